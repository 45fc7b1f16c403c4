/**
 * Fuzzing the migration stream on the destination side. A real source migrates a running vGPU
 * to a real destination through a proxy that damages what the destination receives: the stream
 * cut anywhere, a bit flipped in any message of any kind, an absurd length (with or without a
 * header that checks), messages lost, repeated or swapped, and messages of the wrong kind or at
 * the wrong time (renumbered, so only the protocol's own order can catch them). Every time the
 * destination must refuse, cleanly: no verdict, no device RUNNING, every byte of guest RAM it
 * took one the source sent, a sentence and not a stack, no hang; and the source must be back in
 * RUNNING with its guest intact.
 */
import { connect, createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import { MigState } from '@vfiokit/core';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import type { Booted } from '../src/cli/boot.js';
import { bufferIo } from '../src/cli/io.js';
import { bootForMigration } from '../src/cli/migrate-machine.js';
import { type ConfigInput, draftFromObject, finishConfig } from '../src/config/index.js';
import {
  Channel,
  checksum,
  encodeMessage,
  jsonPayload,
  MESSAGE_HEADER_SIZE,
  MSG_COMPLETE,
  MSG_DEVICE,
  MSG_DONE,
  MSG_ERROR,
  MSG_HELLO,
  MSG_RAM,
  MSG_READY,
  MSG_RESUMED,
  migrateIn,
  migrateOut,
  PAGE,
} from '../src/migrate/index.js';
import { tempDir } from './temp-dirs.js';

/** A small machine, so a whole migration takes a few tens of milliseconds: 2 MiB of RAM, a 1 MiB framebuffer. */
const FUZZ_CONFIG: ConfigInput = {
  plugins: [
    { package: '@vfiokit/nvidia-vgpu', options: { boards: ['T4'], framebufferBytesPerGiB: 256 << 10 } },
  ],
  machine: { ramSize: '2M' },
  devices: [{ plugin: '@vfiokit/nvidia-vgpu', type: 'nvidia-319', slot: '00:05.0' }],
};
const ROUND_BYTES = 64 << 10;
/**
 * Far above any gap between two messages, however loaded the machine: no damage here is caught
 * by a clock. (A peer that goes silent is the idle timeout's case, tested on its own below.)
 */
const IDLE_MS = 120_000;
/** A run that takes longer hangs: a hang is forever, so the bound can be generous. */
const RUN_TIMEOUT_MS = 300_000;

const booted: Booted[] = [];
afterEach(() => {
  for (const b of booted.splice(0)) b.shutdown();
});

async function bootMachine() {
  const { booted: b, target } = await bootForMigration(
    finishConfig(draftFromObject(FUZZ_CONFIG, 'the fuzz configuration')),
    bufferIo(),
  );
  booted.push(b);
  return { b, target };
}

async function socketPair(): Promise<[Socket, Socket]> {
  const path = join(tempDir('vfiokit-fuzz-'), 'm.sock');
  const server = createServer({ allowHalfOpen: true });
  await new Promise<void>((ok) => server.listen(path, ok));
  const accepted = new Promise<Socket>((ok) => server.once('connection', ok));
  const client = await new Promise<Socket>((ok) => {
    const s = connect({ path, allowHalfOpen: true }, () => ok(s));
  });
  const peer = await accepted;
  server.close();
  return [client, peer];
}

const KINDS = [MSG_HELLO, MSG_RAM, MSG_DEVICE, MSG_COMPLETE];
const ANY_KIND = [MSG_HELLO, MSG_READY, MSG_RAM, MSG_DEVICE, MSG_COMPLETE, MSG_RESUMED, MSG_DONE, MSG_ERROR];

/** Which message of the source's stream a damage hits: the n-th of its kind. */
interface Target {
  readonly kind: number;
  readonly nth: number;
}

type Damage =
  | { readonly what: 'cut'; readonly at: Target; readonly offset: number }
  | { readonly what: 'flip'; readonly at: Target; readonly offset: number; readonly bit: number }
  | { readonly what: 'length'; readonly at: Target; readonly length: number; readonly headerChecks: boolean }
  | { readonly what: 'drop' | 'repeat' | 'swap'; readonly at: Target }
  | {
      readonly what: 'inject';
      readonly at: Target;
      readonly type: number;
      readonly payload: Uint8Array | 'early-complete';
    };

interface Frame {
  type: number;
  seq: number;
  bytes: Uint8Array;
}

function renumber(bytes: Uint8Array, seq: number): Uint8Array {
  const out = bytes.slice();
  const dv = new DataView(out.buffer);
  dv.setUint32(1, seq, true);
  dv.setUint32(13, checksum([out.subarray(0, 13)]), true);
  return out;
}

/**
 * The damaging half of the proxy, frame by frame as the source sends them: what the destination
 * gets for each frame, and whether its input ends there (a cut).
 */
class Damager {
  private readonly seen = new Map<number, number>();
  /** Messages added (+) or removed (−) so far: later frames are renumbered by it, for damages meant to keep the sequence. */
  private shift = 0;
  private held: Uint8Array | undefined;
  applied = false;
  cut = false;

  constructor(private readonly damage: Damage) {}

  frame(f: Frame): Uint8Array[] {
    if (this.cut) return [];
    const n = this.seen.get(f.type) ?? 0;
    this.seen.set(f.type, n + 1);
    const d = this.damage;
    const hit = f.type === d.at.kind && n === d.at.nth;
    const own = this.shift === 0 ? f.bytes : renumber(f.bytes, f.seq + this.shift);
    if (this.held) {
      const h = this.held;
      this.held = undefined;
      return [own, h];
    }
    if (!hit) return [own];
    this.applied = true;
    switch (d.what) {
      case 'cut':
        this.cut = true;
        return [f.bytes.subarray(0, d.offset % f.bytes.length)];
      case 'flip': {
        const bytes = f.bytes.slice();
        bytes[d.offset % bytes.length] ^= 1 << d.bit;
        return [bytes];
      }
      case 'length': {
        const bytes = f.bytes.slice();
        const dv = new DataView(bytes.buffer);
        dv.setUint32(5, d.length, true);
        if (d.headerChecks) dv.setUint32(13, checksum([bytes.subarray(0, 13)]), true);
        return [bytes];
      }
      case 'drop':
        return [];
      case 'repeat':
        return [f.bytes, f.bytes];
      case 'swap':
        this.held = f.bytes;
        return [];
      case 'inject': {
        // A whole, well-framed message of the wrong kind or at the wrong time, numbered in sequence.
        const payload =
          d.payload === 'early-complete'
            ? jsonPayload({
                messages: f.seq,
                guest: [{ slot: '00:05.0', driver: 'nvidia-vgpu-guest', state: {} }],
              })
            : d.payload;
        const injected = encodeMessage(d.type, f.seq, payload);
        this.shift = 1;
        return [injected, renumber(f.bytes, f.seq + 1)];
      }
    }
  }
}

/** Reads whole frames from the source's bytes. */
class FrameReader {
  private buf = new Uint8Array(0);
  push(data: Uint8Array): Frame[] {
    const joined = new Uint8Array(this.buf.length + data.length);
    joined.set(this.buf);
    joined.set(data, this.buf.length);
    const out: Frame[] = [];
    let at = 0;
    while (joined.length - at >= MESSAGE_HEADER_SIZE) {
      const dv = new DataView(joined.buffer, at, MESSAGE_HEADER_SIZE);
      const end = at + MESSAGE_HEADER_SIZE + dv.getUint32(5, true);
      if (end > joined.length) break;
      out.push({ type: joined[at], seq: dv.getUint32(1, true), bytes: joined.slice(at, end) });
      at = end;
    }
    this.buf = joined.slice(at);
    return out;
  }
}

/** The destination may hold, for each page of guest RAM, what it had before or what some RAM message of the source carried. */
function allowedPages(frames: readonly Frame[], before: Uint8Array): Set<number>[] {
  const pages = Array.from(
    { length: before.length / PAGE },
    (_, p) => new Set([crc32(before.subarray(p * PAGE, (p + 1) * PAGE))]),
  );
  for (const f of frames) {
    if (f.type !== MSG_RAM) continue;
    const payload = f.bytes.subarray(MESSAGE_HEADER_SIZE);
    const gpa = new DataView(payload.buffer, payload.byteOffset, 8).getFloat64(0, true);
    const data = payload.subarray(8);
    for (let o = 0; o < data.length; o += PAGE)
      pages[(gpa + o) / PAGE].add(crc32(data.subarray(o, o + PAGE)));
  }
  return pages;
}

async function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const hang = new Promise<never>((_, fail) => {
    timer = setTimeout(() => fail(new Error(`${what} hung for ${RUN_TIMEOUT_MS} ms`)), RUN_TIMEOUT_MS);
  });
  try {
    return await Promise.race([p, hang]);
  } finally {
    clearTimeout(timer);
  }
}

/** One migration through the damaging proxy. */
async function migrateThrough(damage: Damage | undefined) {
  const src = await bootMachine();
  const dest = await bootMachine();
  const d = src.target.devices[0];
  const states = [await d.driver.migration.start(src.b.machine.guest, d.probed)];
  const ramBefore = dest.b.machine.ram.bytes.slice();
  const [srcSide, proxyA] = await socketPair();
  const [proxyB, destSide] = await socketPair();
  const reader = new FrameReader();
  const damager = damage ? new Damager(damage) : undefined;
  const frames: Frame[] = [];
  proxyA.on('data', (data: Buffer) => {
    for (const f of reader.push(new Uint8Array(data.buffer, data.byteOffset, data.length))) {
      frames.push(f);
      if (damager?.cut) continue;
      for (const out of damager ? damager.frame(f) : [f.bytes]) proxyB.write(out);
      if (damager?.cut) proxyB.end();
    }
  });
  proxyB.on('data', (data: Buffer) => proxyA.write(data));
  proxyA.on('end', () => proxyB.end());
  proxyB.on('end', () => proxyA.end());
  // A side that closes ends the other once what it forwarded is written, as a socket would.
  proxyA.on('close', () => proxyB.end());
  proxyB.on('close', () => proxyA.end());
  for (const s of [proxyA, proxyB]) s.on('error', () => {});

  const destCh = new Channel(destSide);
  const srcCh = new Channel(srcSide);
  const incoming = migrateIn(destCh, dest.target, { idleMs: IDLE_MS }).then((r) => {
    destCh.close();
    return r;
  });
  const outcome = await withTimeout(
    migrateOut({
      ch: srcCh,
      machine: src.b.machine,
      devices: src.target.devices,
      states,
      tuning: { roundBytes: ROUND_BYTES, idleMs: IDLE_MS },
    }),
    'the source',
  );
  srcCh.close();
  const received = await withTimeout(incoming, 'the destination');
  return { outcome, received, src, dest, states, frames, ramBefore, applied: damager?.applied ?? false };
}

/** The n-th message of a kind: HELLO and COMPLETE come once, RAM and DEVICE at least MAX_NTH + 1 times. */
const MAX_NTH = 12;
const target = (kinds: readonly number[] = KINDS) =>
  fc.constantFrom(...kinds).chain((kind) =>
    fc.record({
      kind: fc.constant(kind),
      nth: kind === MSG_RAM || kind === MSG_DEVICE ? fc.nat({ max: MAX_NTH }) : fc.constant(0),
    }),
  );

const damages: fc.Arbitrary<Damage> = fc.oneof(
  fc.record({ what: fc.constant('cut' as const), at: target(), offset: fc.nat() }),
  fc.record({
    what: fc.constant('flip' as const),
    at: target(),
    offset: fc.nat(),
    bit: fc.integer({ min: 0, max: 7 }),
  }),
  fc.record({
    what: fc.constant('length' as const),
    at: target(),
    length: fc.oneof(fc.constantFrom(0xffffffff, 0x80000000, (4 << 20) + 1, 1 << 30), fc.nat()),
    headerChecks: fc.boolean(),
  }),
  // A lost message is caught by the next one's number: RAM and DEVICE always have one after them
  // (a lost HELLO or COMPLETE leaves both ends waiting, which only the idle timeout ends).
  fc.record({ what: fc.constant('drop' as const), at: target([MSG_RAM, MSG_DEVICE]) }),
  // A repeated COMPLETE would come after the last of the state, where the destination no longer reads.
  fc.record({ what: fc.constant('repeat' as const), at: target([MSG_HELLO, MSG_RAM, MSG_DEVICE]) }),
  // A swapped message trades places with the next one: RAM and DEVICE always have one after them.
  fc.record({ what: fc.constant('swap' as const), at: target([MSG_RAM, MSG_DEVICE]) }),
  fc.record({
    what: fc.constant('inject' as const),
    at: target(),
    type: fc.constantFrom(...ANY_KIND),
    payload: fc.oneof(
      fc.constant(jsonPayload({})),
      fc.constant(jsonPayload({ message: 'x' })),
      fc.uint8Array({ maxLength: 64 }),
    ),
  }),
  // COMPLETE before the data is all there, with the right count of messages before it.
  fc.record({
    what: fc.constant('inject' as const),
    at: target([MSG_RAM, MSG_DEVICE]),
    type: fc.constant(MSG_COMPLETE),
    payload: fc.constant('early-complete' as const),
  }),
);

/** A message on either side that a person reads: a code and a sentence, never a stack. */
function sentence(text: string | undefined): void {
  expect(text).toMatch(/^E[A-Z]+: /);
  expect(text).not.toMatch(/\n\s+at |\.(ts|js):\d+/);
}

async function expectRefusedCleanly(damage: Damage): Promise<void> {
  const { outcome, received, src, dest, states, frames, ramBefore, applied } = await migrateThrough(damage);
  const context = JSON.stringify({ damage, destination: received.error, source: outcome.error });
  expect(applied, `the damage never met its message: ${context}`).toBe(true);
  // The destination refused and said why; no guest program ran there and no device runs.
  expect(received.ok, context).toBe(false);
  expect(received.results).toEqual([]);
  sentence(received.error);
  expect(received.resumed, context).toBe(false);
  // Its device never resumed: untouched (refused before RESUMING) or left in RESUMING, STOP or ERROR.
  const destFile = dest.target.devices[0].file;
  if (destFile.migrationState === MigState.RUNNING)
    expect(Buffer.compare(dest.b.machine.ram.bytes, ramBefore), `RUNNING with state taken: ${context}`).toBe(
      0,
    );
  // Every page of the destination's RAM holds what it held before or what the source really sent.
  const allowed = allowedPages(frames, ramBefore);
  const ram = dest.b.machine.ram.bytes;
  for (let p = 0; p < allowed.length; p++)
    expect(allowed[p].has(crc32(ram.subarray(p * PAGE, (p + 1) * PAGE))), `page ${p}: ${context}`).toBe(true);
  // The source is back in RUNNING and its guest lost nothing.
  expect(outcome.ok, context).toBe(false);
  expect(outcome.resumed, context).toBe(false);
  sentence(outcome.error);
  const d = src.target.devices[0];
  expect(d.file.migrationState, context).toBe(MigState.RUNNING);
  if (!outcome.stopped) await d.driver.migration.leaveInFlight(src.b.machine.guest, d.probed, states[0]);
  const r = await d.driver.migration.verify(src.b.machine.guest, d.probed, states[0]);
  expect(r.ok, `${r.summary}: ${context}`).toBe(true);
}

describe('the migration destination under a damaged stream (fuzz)', () => {
  it('migrates through the proxy when nothing is damaged', async () => {
    const { outcome, received, frames } = await migrateThrough(undefined);
    expect(outcome.error).toBeUndefined();
    expect(received.ok).toBe(true);
    for (const k of KINDS) expect(frames.some((f) => f.type === k)).toBe(true);
    expect(frames.filter((f) => f.type === MSG_RAM).length).toBeGreaterThan(MAX_NTH);
    expect(frames.filter((f) => f.type === MSG_DEVICE).length).toBeGreaterThan(MAX_NTH);
  });

  it('refuses a flipped byte in guest RAM, which it used to take and call verified', async () => {
    await expectRefusedCleanly({
      what: 'flip',
      at: { kind: MSG_RAM, nth: 3 },
      offset: MESSAGE_HEADER_SIZE + 8 + 100,
      bit: 0,
    });
    const { received } = await migrateThrough({
      what: 'flip',
      at: { kind: MSG_RAM, nth: 0 },
      offset: 5000,
      bit: 3,
    });
    expect(received.error).toMatch(/payload of message \d+ \(RAM\) fails its CRC32 check/);
  });

  it('refuses a COMPLETE whose length field is damaged by its header check, without waiting for a payload', async () => {
    // A counterexample once seen under heavy load, when a 2 s idle timeout fired first.
    const damage: Damage = { what: 'flip', at: { kind: MSG_COMPLETE, nth: 0 }, offset: 7, bit: 2 };
    await expectRefusedCleanly(damage);
    const { received } = await migrateThrough(damage);
    expect(received.error).toMatch(/the header of message \d+ fails its CRC32 check/);
  });

  it('refuses COMPLETE when it is `{}`, saying which field is missing', async () => {
    await expectRefusedCleanly({
      what: 'inject',
      at: { kind: MSG_COMPLETE, nth: 0 },
      type: MSG_COMPLETE,
      payload: jsonPayload({}),
    });
    const { received } = await migrateThrough({
      what: 'inject',
      at: { kind: MSG_COMPLETE, nth: 0 },
      type: MSG_COMPLETE,
      payload: jsonPayload({}),
    });
    expect(received.error).toMatch(/COMPLETE message that has messages missing or not valid/);
    expect(received.error).not.toMatch(/iterable/);
  });

  it('refuses every damage cleanly, with the source back in RUNNING (property)', async () => {
    await fc.assert(
      fc.asyncProperty(damages, (damage) => expectRefusedCleanly(damage)),
      {
        numRuns: Number(process.env.VFIOKIT_FUZZ_RUNS ?? 60),
      },
    );
  }, 600_000);
});
