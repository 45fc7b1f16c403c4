/**
 * Hostile peers: random and mutated messages against a live server. Each run is one connection;
 * the property is that every framed command gets a reply (usually an error) or the connection is
 * closed, that a probe after them is answered or the connection is closed, and afterwards that
 * the server still serves a clean client and holds no fd it did not hold before.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/host.js';
import { Eventfd } from '../src/native/eventfd.js';
import { allocateMemfdMemory, closeFds, openFdCount } from '../src/native/memory.js';
import { UnixConnection } from '../src/native/socket.js';
import { decodeDeviceInfoReply, encodeDeviceInfoRequest } from '../src/protocol/device.js';
import { FrameReassembler } from '../src/protocol/framing.js';
import { maxMessageSize } from '../src/protocol/header.js';
import { encodeVersionRequest } from '../src/protocol/version.js';
import { createPluginHostForServer } from '../src/server/plugin-host.js';
import { serveDevice, type VfioUserServer } from '../src/server/server.js';
import { TestDevice } from './device.js';
import { waitFor } from './helpers.js';
import { RawClient } from './raw-client.js';

const LIMIT = maxMessageSize();
const PROBE_ID = 0xbeef;

type FdKind = 'eventfd' | 'memfd';
interface Step {
  readonly bytes: Uint8Array;
  readonly fds: readonly FdKind[];
  /** A reply (or the close) must follow this message. */
  readonly answered: boolean;
  /** The message claims more bytes than it has: the server waits for them, so nothing after it is judged. */
  readonly stalls: boolean;
}

function message(id: number, command: number, payload: Uint8Array, flags = 0): Uint8Array {
  const bytes = new Uint8Array(16 + payload.length);
  const dv = new DataView(bytes.buffer);
  dv.setUint16(0, id, true);
  dv.setUint16(2, command, true);
  dv.setUint32(4, bytes.length, true);
  dv.setUint32(8, flags, true);
  bytes.set(payload, 16);
  return bytes;
}

const u64 = fc.oneof(
  fc.constantFrom(0, 0x1000, 0x4000, 2 ** 32 - 1, 2 ** 53 - 1, 2 ** 53, 2 ** 64 - 4096, 2 ** 64 - 1),
  fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }).map(Number),
  fc.integer({ min: 0, max: 0x20000 }).map((n) => n * 16),
);
const u32 = fc.oneof(
  fc.constantFrom(0, 1, 4, 8, 16, 20, 24, 31, 32, 255, 0xffffffff),
  fc.nat({ max: 0xffffffff }),
);

function fields(spec: readonly ('u32' | 'u64')[]): fc.Arbitrary<Uint8Array> {
  return fc.tuple(...spec.map((k) => (k === 'u32' ? u32 : u64))).map((vals) => {
    const size = spec.reduce((n, k) => n + (k === 'u32' ? 4 : 8), 0);
    const out = new Uint8Array(size);
    const dv = new DataView(out.buffer);
    let at = 0;
    spec.forEach((k, i) => {
      if (k === 'u32') dv.setUint32(at, vals[i] as number, true);
      else dv.setBigUint64(at, BigInt.asUintN(64, BigInt(Math.floor(vals[i] as number))), true);
      at += k === 'u32' ? 4 : 8;
    });
    return out;
  });
}

/** Payloads shaped like each command's struct, with hostile values. */
const payloadFor: Record<number, fc.Arbitrary<Uint8Array>> = {
  2: fields(['u32', 'u32', 'u64', 'u64', 'u64']), // DMA_MAP
  3: fields(['u32', 'u32', 'u64', 'u64']), // DMA_UNMAP
  4: fields(['u32', 'u32', 'u32', 'u32']), // GET_INFO
  5: fields(['u32', 'u32', 'u32', 'u32', 'u64', 'u64']), // REGION_INFO
  6: fields(['u32', 'u32', 'u32', 'u32']), // REGION_IO_FDS
  7: fields(['u32', 'u32', 'u32', 'u32']), // IRQ_INFO
  8: fc
    .tuple(fields(['u32', 'u32', 'u32', 'u32', 'u32']), fc.uint8Array({ maxLength: 8 }))
    .map(([a, b]) => concat(a, b)),
  9: fields(['u64', 'u32', 'u32']), // REGION_READ
  10: fc.tuple(fields(['u64', 'u32', 'u32']), fc.uint8Array({ maxLength: 16 })).map(([a, b]) => concat(a, b)),
  13: fc.uint8Array({ maxLength: 4 }),
  16: fc.tuple(fields(['u32', 'u32']), fc.uint8Array({ maxLength: 48 })).map(([a, b]) => concat(a, b)),
  17: fields(['u32', 'u32']),
  18: fc.tuple(fields(['u32', 'u32']), fc.uint8Array({ maxLength: 16 })).map(([a, b]) => concat(a, b)),
};

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

const fdList = fc.oneof(
  { weight: 5, arbitrary: fc.constant([] as FdKind[]) },
  {
    weight: 3,
    arbitrary: fc.array(fc.constantFrom<FdKind>('eventfd', 'memfd'), { minLength: 1, maxLength: 3 }),
  },
  // more than the 8 the server announced
  { weight: 1, arbitrary: fc.array(fc.constant<FdKind>('eventfd'), { minLength: 9, maxLength: 12 }) },
);

function stepArb(id: number): fc.Arbitrary<Step> {
  const known = fc
    .constantFrom(...Object.keys(payloadFor).map(Number))
    .chain((cmd) => payloadFor[cmd].map((p) => ({ cmd, p })));
  const structured = fc.tuple(known, fdList).map(([{ cmd, p }, fds]) => ({
    bytes: message(id, cmd, p),
    fds,
    answered: true,
    stalls: false,
  }));
  const unknownCommand = fc
    .tuple(fc.constantFrom(0, 1, 11, 12, 14, 15, 19, 99, 0xffff), fc.uint8Array({ maxLength: 40 }), fdList)
    .map(([cmd, p, fds]) => ({ bytes: message(id, cmd, p), fds, answered: true, stalls: false }));
  const badType = fc
    .tuple(known, fc.constantFrom(1, 2, 3, 0xf, 0x21, 0x31))
    // No_reply (0x10) means no answer at all, not even an error (libvfio-user does the same).
    .map(([{ cmd, p }, flags]) => ({
      bytes: message(id, cmd, p, flags),
      fds: [],
      answered: (flags & 0x10) === 0,
      stalls: false,
    }));
  const noReply = known.map(({ cmd, p }) => ({
    bytes: message(id, cmd, p, 0x10),
    fds: [],
    answered: false,
    stalls: false,
  }));
  const truncated = fc.tuple(known, fc.nat({ max: 40 })).map(([{ cmd, p }, cut]) => ({
    bytes: message(id, cmd, p.subarray(0, Math.max(0, p.length - cut))),
    fds: [],
    answered: true,
    stalls: false,
  }));
  // msg_size below 16 or above the limit: framing is lost, the server must close.
  const badSize = fc
    .tuple(known, fc.constantFrom(0, 1, 15, LIMIT + 1, 0xffffffff))
    .map(([{ cmd, p }, size]) => {
      const bytes = message(id, cmd, p);
      new DataView(bytes.buffer).setUint32(4, size, true);
      return { bytes, fds: [], answered: true, stalls: false };
    });
  // msg_size above what was sent (but allowed): the server waits for the rest.
  const short = fc.tuple(known, fc.integer({ min: 1, max: 4096 })).map(([{ cmd, p }, more]) => {
    const bytes = message(id, cmd, p);
    new DataView(bytes.buffer).setUint32(4, bytes.length + more, true);
    return { bytes, fds: [], answered: false, stalls: true };
  });
  const shortHeader = fc
    .uint8Array({ minLength: 1, maxLength: 15 })
    .map((b) => ({ bytes: b, fds: [], answered: false, stalls: true }));
  return fc.oneof(
    { weight: 6, arbitrary: structured },
    { weight: 1, arbitrary: unknownCommand },
    { weight: 1, arbitrary: badType },
    { weight: 1, arbitrary: noReply },
    { weight: 2, arbitrary: truncated },
    { weight: 1, arbitrary: badSize },
    { weight: 1, arbitrary: short },
    { weight: 1, arbitrary: shortHeader },
  );
}

const runArb = fc.record({
  version: fc.boolean().map((b) => b || Math.random() > 0.1),
  steps: fc
    .integer({ min: 1, max: 4 })
    .chain((n) => fc.tuple(...Array.from({ length: n }, (_, i) => stepArb(0x100 + i)))),
});

async function play(path: string, run: { version: boolean; steps: readonly Step[] }): Promise<void> {
  const conn = await UnixConnection.connect(path);
  const framer = new FrameReassembler();
  const replied = new Set<number>();
  let closed = false;
  conn.start({
    onData: (chunk, fds) => {
      closeFds(fds);
      for (const f of framer.push(chunk)) {
        closeFds(f.fds);
        replied.add(f.header.msgId);
      }
    },
    onClose: () => {
      closed = true;
    },
  });
  const send = (bytes: Uint8Array, kinds: readonly FdKind[] = []) => {
    const fds = kinds.map((k) =>
      k === 'eventfd' ? new Eventfd().fd : allocateMemfdMemory('hostile', 4096).fd,
    );
    try {
      if (!closed) conn.send(bytes, fds);
    } catch {
      // the server may already have closed on us
    } finally {
      closeFds(fds);
    }
  };
  try {
    if (run.version)
      send(encodeVersionRequest(1, { major: 0, minor: 2, capabilities: { max_msg_fds: 8 } as never }));
    let judged = true;
    for (const step of run.steps) {
      send(step.bytes, step.fds);
      if (step.stalls) {
        judged = false;
        break;
      }
    }
    if (!judged) {
      await new Promise((r) => setTimeout(r, 2));
      return;
    }
    send(encodeDeviceInfoRequest(PROBE_ID));
    await waitFor(() => closed || replied.has(PROBE_ID), 2000);
    if (!closed)
      for (const step of run.steps) {
        const id = new DataView(step.bytes.buffer, step.bytes.byteOffset).getUint16(0, true);
        if (step.answered)
          expect(replied.has(id), `message ${id} got neither a reply nor a close`).toBe(true);
      }
  } finally {
    conn.close();
  }
}

describe('a server under hostile peers', () => {
  let dir: string;
  let path: string;
  let device: TestDevice;
  let server: VfioUserServer;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'vfio-user-hostile-'));
    path = join(dir, 'dev.sock');
    device = new TestDevice('hostile', createPluginHostForServer({ log: silentLogger }));
    server = await serveDevice({ socketPath: path, device, log: silentLogger });
  });
  afterAll(async () => {
    await server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers or closes on every message, never crashes, leaks no fd and keeps serving', async () => {
    const before = openFdCount();
    await fc.assert(
      fc.asyncProperty(runArb, async (run) => {
        await play(path, run);
        await server.idle();
      }),
      { numRuns: 300, seed: 12 },
    );
    await server.idle();
    await waitFor(() => openFdCount() === before, 3000);
    const clean = await RawClient.connect(path);
    await clean.handshake();
    const info = decodeDeviceInfoReply((await clean.call(encodeDeviceInfoRequest(clean.nextId()))).payload);
    expect(info).toMatchObject({ numRegions: 9, numIrqs: 5 });
    expect(server.sessions).toBeGreaterThan(300);
    clean.close();
    await server.idle();
    expect(device.opens).toBe(device.closes);
  }, 120_000);
});

describe('what the operator hears of a hostile peer', () => {
  it('warns why a session was ended for a broken message, and stays quiet when a client just leaves', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-user-hostile-log-'));
    const path = join(dir, 'dev.sock');
    const warnings: string[] = [];
    const log = { ...silentLogger, warn: (m: string) => void warnings.push(m) };
    const device = new TestDevice('hostile-log', createPluginHostForServer({ log: silentLogger }));
    const server = await serveDevice({ socketPath: path, device, log });
    try {
      const polite = await RawClient.connect(path);
      await polite.handshake();
      polite.close();
      await server.idle();
      expect(warnings).toEqual([]);

      // A header whose msg_size is 0: framing is lost, so the server must close the connection.
      const rude = await RawClient.connect(path);
      const bytes = message(rude.nextId(), 1, new Uint8Array(0));
      new DataView(bytes.buffer).setUint32(4, 0, true);
      rude.conn.socket.send(bytes, []);
      await rude.conn.closed;
      await server.idle();
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(
        /^session ended: EPROTO: VFIO_USER_VERSION \(msg_id \d+\) has msg_size 0; it must be between 16 and \d+\./,
      );
      expect(server.sessions).toBe(2);
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
