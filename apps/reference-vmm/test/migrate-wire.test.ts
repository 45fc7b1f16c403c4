/** The migration channel's framing: every message checked, numbered and bounded (property tests). */
import { VfioError } from '@vfiokit/core';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  checksum,
  encodeHeader,
  encodeMessage,
  MAX_PAYLOAD,
  MESSAGE_HEADER_SIZE,
  MessageParser,
  MSG_DEVICE,
  MSG_ERROR,
  MSG_HELLO,
  MSG_RAM,
} from '../src/migrate/index.js';

const messages = fc.array(
  fc.tuple(fc.integer({ min: MSG_HELLO, max: MSG_ERROR }), fc.uint8Array({ maxLength: 300 })),
  { minLength: 1, maxLength: 8 },
);

function encodeAll(msgs: readonly [number, Uint8Array][]): Uint8Array {
  return Buffer.concat(msgs.map(([t, p], i) => encodeMessage(t, i, p)));
}

/** Feed `bytes` in pieces; the messages that came out, and the parser's error if it stopped. */
function parse(bytes: Uint8Array, cuts: readonly number[] = [bytes.length || 1]) {
  const parser = new MessageParser();
  const got: { type: number; payload: number[] }[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = cuts[i % cuts.length];
    for (const m of parser.push(bytes.subarray(at, at + n)))
      got.push({ type: m.type, payload: [...m.payload] });
    at += n;
  }
  return { got, error: parser.error };
}

describe('the migration wire format', () => {
  it('splits a byte stream into the messages it carries, however it is cut (property)', () => {
    fc.assert(
      fc.property(
        messages,
        fc.array(fc.integer({ min: 1, max: 64 }), { minLength: 1, maxLength: 10 }),
        (msgs, cuts) => {
          const { got, error } = parse(encodeAll(msgs), cuts);
          expect(error).toBeUndefined();
          expect(got).toEqual(msgs.map(([t, p]) => ({ type: t, payload: [...p] })));
        },
      ),
    );
  });

  it('frames a payload given in parts exactly as the same bytes joined', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 100 }), { maxLength: 5 }),
        fc.nat(1000),
        (parts, seq) => {
          const joined = Buffer.concat(parts);
          expect([...encodeHeader(MSG_RAM, seq, parts)]).toEqual([...encodeHeader(MSG_RAM, seq, [joined])]);
          expect(checksum(parts)).toBe(checksum([joined]));
        },
      ),
    );
  });

  it('refuses every single flipped bit and never hands out a message that differs from what was sent (property)', () => {
    fc.assert(
      fc.property(messages, fc.nat(), fc.integer({ min: 0, max: 7 }), (msgs, where, bit) => {
        const bytes = encodeAll(msgs).slice();
        const at = where % bytes.length;
        bytes[at] ^= 1 << bit;
        const { got, error } = parse(bytes);
        expect(error).toBeInstanceOf(VfioError);
        expect((error as VfioError).code).toBe('EPROTO');
        // The messages before the damaged one came out unchanged; none after it.
        const sent = msgs.map(([t, p]) => ({ type: t, payload: [...p] }));
        expect(got).toEqual(sent.slice(0, got.length));
        let end = 0;
        let damagedIndex = 0;
        for (const [, p] of msgs) {
          end += MESSAGE_HEADER_SIZE + p.length;
          if (at < end) break;
          damagedIndex++;
        }
        expect(got.length).toBe(damagedIndex);
      }),
    );
  });

  it('never throws on arbitrary bytes: it stops with a VfioError and takes nothing after it (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 64 }), { maxLength: 6 }), (chunks) => {
        const parser = new MessageParser();
        for (const c of chunks) {
          const before = parser.error;
          const out = parser.push(c);
          if (before) expect(out).toEqual([]);
        }
        if (parser.error) {
          expect(parser.error).toBeInstanceOf(VfioError);
          expect(parser.push(encodeMessage(MSG_HELLO, parser.received, new Uint8Array(0)))).toEqual([]);
        }
      }),
    );
  });

  it('refuses a lost, repeated or reordered message by its number (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 40 }), { minLength: 2, maxLength: 6 }),
        fc.nat(),
        fc.constantFrom('drop', 'repeat', 'swap'),
        (payloads, pick, how) => {
          const framed = payloads.map((p, i) => encodeMessage(MSG_DEVICE, i, p));
          const i = pick % (framed.length - 1);
          const order = framed.slice();
          if (how === 'drop') order.splice(i, 1);
          else if (how === 'repeat') order.splice(i, 0, framed[i]);
          else [order[i], order[i + 1]] = [order[i + 1], order[i]];
          const { got, error } = parse(Buffer.concat(order));
          expect((error as Error)?.message).toMatch(
            /out of order: message \d+ \(DEVICE\) came where message \d+ was due/,
          );
          expect(got.length).toBe(how === 'repeat' ? i + 1 : i);
        },
      ),
    );
  });

  it('refuses an unknown type and an absurd length as soon as the header is in, without waiting for the payload', () => {
    const forged = (type: number, length: number) => {
      const h = encodeHeader(type, 0, []);
      const dv = new DataView(h.buffer);
      dv.setUint32(5, length, true);
      dv.setUint32(13, checksum([h.subarray(0, 13)]), true);
      return h;
    };
    const error = (bytes: Uint8Array) => {
      const p = new MessageParser();
      expect(p.push(bytes)).toEqual([]);
      return p.error?.message;
    };
    expect(error(forged(99, 0))).toMatch(/message type 99, which does not exist/);
    expect(error(forged(MSG_DEVICE, MAX_PAYLOAD + 1))).toMatch(
      /announced a 4194305-byte DEVICE message \(at most 4194304\)/,
    );
    expect(error(forged(MSG_RAM, 0xffffffff))).toMatch(/4294967295-byte RAM message/);
    // A length damaged in transit fails the header's own check instead.
    const h = encodeHeader(MSG_RAM, 0, [new Uint8Array(10)]);
    h[6] ^= 0x40;
    expect(error(h)).toMatch(/the header of message 0 fails its CRC32 check/);
  });
});
