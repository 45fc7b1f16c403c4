/**
 * VFIO_USER_VERSION (src/protocol/version.ts): major, minor and the capabilities JSON, round trips,
 * what libvfio-user sends, refusals of malformed JSON, and the spec defaults for unannounced limits.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import * as P from '../src/protocol/index.js';
import { msgId, roundTrip, u32 } from './codec-helpers.js';
import { embed, expectVfioError } from './helpers.js';

describe('VERSION', () => {
  const caps = fc.record(
    {
      maxMsgFds: fc.integer({ min: 0, max: 1024 }),
      maxDataXferSize: fc.integer({ min: 1, max: 0xffffffff }),
      maxDmaMaps: u32,
      pgsizes: fc.integer({ min: 1, max: 2 ** 40 }),
      migration: fc.record(
        { pgsize: fc.integer({ min: 1, max: 2 ** 30 }), maxBitmapSize: fc.integer({ min: 0, max: 2 ** 40 }) },
        { requiredKeys: ['pgsize'] },
      ),
      twinSocket: fc.record(
        { supported: fc.boolean(), fdIndex: fc.integer({ min: 0, max: 8 }) },
        { requiredKeys: [] },
      ),
      writeMultiple: fc.boolean(),
    },
    { requiredKeys: [] },
  );

  it('round-trips major, minor and every capability', () => {
    fc.assert(
      fc.property(
        msgId,
        fc.integer({ min: 0, max: 0xffff }),
        fc.integer({ min: 0, max: 0xffff }),
        caps,
        (id, major, minor, c) => {
          const v = roundTrip(
            P.encodeVersionRequest(id, { major, minor, capabilities: c }),
            1,
            P.decodeVersion,
          );
          expect(v).toEqual({ major, minor, capabilities: c });
        },
      ),
    );
  });

  it('accepts a version without JSON and ends the JSON with one NUL', () => {
    expect(roundTrip(P.encodeVersionReply(1, { major: 0, minor: 2 }), 1, P.decodeVersion)).toEqual({
      major: 0,
      minor: 2,
    });
    const m = P.encodeVersionReply(1, { major: 0, minor: 2, capabilities: { maxMsgFds: 8 } });
    expect(m[m.length - 1]).toBe(0);
    expect(new TextDecoder().decode(m.subarray(20, -1))).toBe('{"capabilities":{"max_msg_fds":8}}');
  });

  it('parses what libvfio-user sends and ignores unknown keys', () => {
    const json =
      '{"capabilities":{"max_msg_fds":8,"max_data_xfer_size":1048576,"migration":{"pgsize":4096},"future":{"x":1}},"other":true}';
    const payload = new Uint8Array(4 + json.length + 1);
    payload.set(new TextEncoder().encode(json), 4);
    payload[2] = 2;
    expect(P.decodeVersion(embed(payload))).toEqual({
      major: 0,
      minor: 2,
      capabilities: { maxMsgFds: 8, maxDataXferSize: 1048576, migration: { pgsize: 4096 } },
    });
  });

  const withJson = (json: string, nul = true) => {
    const text = new TextEncoder().encode(json);
    const p = new Uint8Array(4 + text.length + (nul ? 1 : 0));
    p.set(text, 4);
    return embed(p);
  };

  it.each([
    ['a string where a number belongs', '{"capabilities":{"max_msg_fds":"8"}}', /max_msg_fds/],
    ['a negative max_msg_fds', '{"capabilities":{"max_msg_fds":-1}}', /max_msg_fds/],
    ['max_msg_fds above 1024', '{"capabilities":{"max_msg_fds":1025}}', /max_msg_fds/],
    ['a fractional max_data_xfer_size', '{"capabilities":{"max_data_xfer_size":1.5}}', /max_data_xfer_size/],
    ['a zero max_data_xfer_size', '{"capabilities":{"max_data_xfer_size":0}}', /max_data_xfer_size/],
    ['migration without pgsize', '{"capabilities":{"migration":{}}}', /pgsize/],
    ['migration that is not an object', '{"capabilities":{"migration":4096}}', /migration/],
    [
      'twin_socket.supported as a number',
      '{"capabilities":{"twin_socket":{"supported":1}}}',
      /twin_socket\.supported/,
    ],
    ['write_multiple as a string', '{"capabilities":{"write_multiple":"yes"}}', /write_multiple/],
    ['capabilities as an array', '{"capabilities":[]}', /capabilities/],
    ['a JSON array', '[1]', /object/],
    ['invalid JSON', '{"capabilities":', /not JSON/],
  ])('refuses %s with EINVAL', (_what, json, pattern) => {
    expectVfioError(() => P.decodeVersion(withJson(json)), 'EINVAL', pattern);
  });

  it('refuses JSON without its NUL, a NUL inside, and invalid UTF-8', () => {
    expectVfioError(() => P.decodeVersion(withJson('{}', false)), 'EINVAL', /NUL-terminated/);
    expectVfioError(() => P.decodeVersion(withJson('{}\u0000{}')), 'EINVAL', /NUL at byte 2/);
    const bad = new Uint8Array([0, 0, 0, 0, 0xff, 0xfe, 0]);
    expectVfioError(() => P.decodeVersion(embed(bad)), 'EINVAL', /UTF-8/);
    expectVfioError(() => P.decodeVersion(embed(new Uint8Array(3))), 'EINVAL', /at least 4/);
  });

  it('applies the spec defaults for limits that were not announced', () => {
    expect(P.capabilityLimits({})).toEqual({ maxMsgFds: 1, maxDataXferSize: 1048576 });
    expect(P.capabilityLimits({ maxMsgFds: 8, maxDataXferSize: 4096 })).toEqual({
      maxMsgFds: 8,
      maxDataXferSize: 4096,
    });
  });
});
