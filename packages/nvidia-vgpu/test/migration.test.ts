import { randomUUID } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { MigState, VfioError } from '@vfiokit/core';
import {
  VFIO_MIGRATION_P2P,
  VFIO_MIGRATION_PRE_COPY,
  VFIO_MIGRATION_STOP_COPY,
  vfioPciIndexToOffset,
} from '@vfiokit/core/abi';
import type { DeviceFile } from '@vfiokit/core/host';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { BAR3_SIZE } from '../src/abi.js';
import {
  CH_GET,
  CHANNEL_STRIDE,
  METHOD_MEMSET,
  METHOD_SEM_RELEASE,
  MIG_PAGE_SIZE,
  methodHeader,
  RECORD_HEADER_SIZE,
  REG_CHANNEL_BASE,
  STREAM_HEADER_SIZE,
  TAG_BAR3,
  TAG_STATE,
} from '../src/index.js';
import { type OpenVgpu, openVgpu, rig } from './helpers.js';

function drain(file: DeviceFile, chunk = 1 << 20): Uint8Array {
  const parts: Uint8Array[] = [];
  for (;;) {
    let c: Uint8Array;
    try {
      c = file.migrationRead(chunk);
    } catch (err) {
      if (err instanceof VfioError && err.code === 'ENOMSG') break;
      throw err;
    }
    if (c.length === 0) break;
    parts.push(c.slice());
  }
  return new Uint8Array(Buffer.concat(parts));
}

function resume(
  dst: OpenVgpu,
  stream: Uint8Array,
  chunk = 65536,
): { writeError?: unknown; stopError?: unknown } {
  dst.file.setMigrationState(MigState.STOP);
  dst.file.setMigrationState(MigState.RESUMING);
  let writeError: unknown;
  try {
    for (let at = 0; at < stream.length; at += chunk)
      dst.file.migrationWrite(stream.subarray(at, at + chunk));
  } catch (err) {
    writeError = err;
  }
  let stopError: unknown;
  try {
    dst.file.setMigrationState(MigState.STOP);
  } catch (err) {
    stopError = err;
  }
  return { writeError, stopError };
}

/** A source with data in its framebuffer and work queued but not yet run (in flight). */
function busySource() {
  const r = rig();
  const src = openVgpu(r.t4Parent, 'nvidia-319', randomUUID());
  const data = Uint8Array.from({ length: 65536 }, (_, i) => (i * 31 + 7) & 0xff);
  const buf = src.alloc(65536);
  src.fbWrite(buf, data);
  const [ch, pb] = src.channel();
  const target = src.alloc(65536);
  src.push(ch, pb, [
    methodHeader(METHOD_MEMSET),
    target,
    65536,
    0x77777777,
    methodHeader(METHOD_SEM_RELEASE),
    pb + 1024,
    99,
  ]);
  return { r, src, data, buf, ch, pb, target };
}

const dstOf = (r: ReturnType<typeof rig>) => openVgpu(r.t4Parent, 'nvidia-319', randomUUID());

describe('vGPU migration v2', () => {
  it('offers STOP_COPY | P2P | PRE_COPY', () => {
    const { src } = busySource();
    expect(src.file.migrationCaps()).toBe(
      VFIO_MIGRATION_STOP_COPY | VFIO_MIGRATION_P2P | VFIO_MIGRATION_PRE_COPY,
    );
  });

  it('keeps the state the core keeps across device files: a vGPU left stopped runs again only when it is told to', () => {
    const r = rig();
    const v = openVgpu(r.t4Parent, 'nvidia-319');
    v.file.setMigrationState(MigState.STOP);
    expect(v.device.running()).toBe(false);
    // The VMM goes away with the vGPU stopped and the next user opens it: an mdev keeps the state
    // its last user left (mtty has no open_device), and so must the vGPU's engine.
    v.file.close();
    v.file.open();
    expect(v.file.migrationState).toBe(MigState.STOP);
    expect(v.device.migState).toBe(MigState.STOP);
    expect(v.device.running()).toBe(false);
    v.file.setMigrationState(MigState.RUNNING);
    expect(v.device.running()).toBe(true);
  });

  it('moves framebuffer, registers, allocations and in-flight channel work; the work completes on the destination', () => {
    const { r, src, data, buf, ch, pb, target } = busySource();
    src.file.setMigrationState(MigState.STOP_COPY);
    const size = src.device.migration.stopCopySize();
    const stream = drain(src.file);
    expect(stream.length).toBe(size);
    const dst = dstOf(r);
    const { writeError, stopError } = resume(dst, stream, 7919);
    expect(writeError).toBeUndefined();
    expect(stopError).toBeUndefined();
    dst.file.setMigrationState(MigState.RUNNING);
    expect(Buffer.compare(dst.fbRead(buf, 65536), data)).toBe(0);
    expect(dst.fbRead(target, 4)).toEqual(new Uint8Array(4));
    r.t4.advance(10_000_000);
    expect(dst.fbRead(target, 65536).every((b) => b === 0x77)).toBe(true);
    expect(dst.fbRead(pb + 1024, 1)[0]).toBe(99);
    expect(dst.reg(REG_CHANNEL_BASE + ch * CHANNEL_STRIDE + CH_GET)).toBe(28);
    // the source, back to RUNNING, lost nothing either
    src.file.setMigrationState(MigState.RUNNING);
    r.t4.advance(10_000_000);
    expect(src.fbRead(pb + 1024, 1)[0]).toBe(99);
    expect(Buffer.compare(src.fbRead(buf, 65536), data)).toBe(0);
  });

  it('pre-copies the whole framebuffer while running, then stop-and-copy carries only what changed', () => {
    const { r, src } = busySource();
    r.t4.advance(10_000_000);
    src.file.setMigrationState(MigState.PRE_COPY);
    const info0 = src.file.precopyInfo();
    expect(info0.initialBytes).toBeGreaterThanOrEqual(src.device.fbSize);
    const pre = drain(src.file);
    expect(src.file.precopyInfo()).toEqual({ initialBytes: 0, dirtyBytes: 0 });
    // the guest keeps working: one page dirtied by the engine
    const [ch, pb] = src.channel(4096);
    const spot = src.alloc(4096);
    src.push(ch, pb, [methodHeader(METHOD_MEMSET), spot, 4096, 0x3c3c3c3c]);
    r.t4.advance(1_000_000);
    const dirty = src.file.precopyInfo().dirtyBytes;
    expect(dirty).toBeGreaterThanOrEqual(MIG_PAGE_SIZE);
    expect(dirty).toBeLessThanOrEqual(4 * MIG_PAGE_SIZE);
    src.file.setMigrationState(MigState.STOP_COPY);
    const rest = drain(src.file);
    expect(rest.length).toBeLessThan(pre.length / 8);
    const dst = dstOf(r);
    expect(resume(dst, new Uint8Array(Buffer.concat([pre, rest]))).stopError).toBeUndefined();
    expect(Buffer.compare(dst.device.fb, src.device.fb)).toBe(0);
    expect(dst.fbRead(spot, 1)[0]).toBe(0x3c);
  });

  it('finds writes made through a CPU mapping of BAR1 during pre-copy', () => {
    const { r, src } = busySource();
    const map = src.file.mmap(vfioPciIndexToOffset(1), src.device.fbSize);
    src.file.setMigrationState(MigState.PRE_COPY);
    const pre = drain(src.file);
    map.memory.bytes[12345] ^= 0xff; // invisible to the device
    src.file.setMigrationState(MigState.STOP_COPY);
    const rest = drain(src.file);
    const dst = dstOf(r);
    expect(resume(dst, new Uint8Array(Buffer.concat([pre, rest]))).stopError).toBeUndefined();
    expect(dst.device.fb[12345]).toBe(src.device.fb[12345]);
  });

  it('migrates a one-per-GPU type (T4-16C) to another host’s GPU', () => {
    const a = rig();
    const b = rig();
    const src = openVgpu(a.t4Parent, 'nvidia-321');
    src.fbWrite(4096, new Uint8Array(4096).fill(9));
    src.file.setMigrationState(MigState.STOP_COPY);
    const stream = drain(src.file);
    const dst = openVgpu(b.t4Parent, 'nvidia-321');
    expect(resume(dst, stream).stopError).toBeUndefined();
    expect(dst.fbRead(4096, 4096).every((x) => x === 9)).toBe(true);
  });

  it('puts the destination in ERROR for a truncated stream, and the source returns to RUNNING with nothing lost', () => {
    const { r, src, data, buf } = busySource();
    src.file.setMigrationState(MigState.STOP_COPY);
    const stream = drain(src.file);
    const dst = dstOf(r);
    for (const cut of [0, 5, STREAM_HEADER_SIZE + 3, stream.length - 24, stream.length - 1]) {
      const { stopError } = resume(dst, stream.subarray(0, cut));
      expect(stopError).toBeInstanceOf(VfioError);
      expect((stopError as VfioError).message).toMatch(/ended after \d+ bytes/);
      expect(dst.file.migrationState).toBe(MigState.ERROR);
      dst.file.reset();
      expect(dst.file.migrationState).toBe(MigState.RUNNING);
    }
    src.file.setMigrationState(MigState.RUNNING);
    expect(Buffer.compare(src.fbRead(buf, 65536), data)).toBe(0);
  });

  it('refuses a stream from another type, a reordered record, trailing bytes and a flipped payload bit', () => {
    const { r, src } = busySource();
    src.file.setMigrationState(MigState.STOP_COPY);
    const stream = drain(src.file);
    const other = openVgpu(r.adaParent, 'nvidia-941');
    expect(String((resume(other, stream).writeError as VfioError).message)).toMatch(/type 319/);
    const flipped = stream.slice();
    flipped[STREAM_HEADER_SIZE + 24 + 100] ^= 1;
    const dst = dstOf(r);
    const attempt = (s: Uint8Array) => {
      if (dst.file.migrationState === MigState.ERROR) dst.file.reset();
      return String((resume(dst, s).writeError as VfioError).message);
    };
    expect(attempt(flipped)).toMatch(/payload checksum/);
    const trailing = attempt(Buffer.concat([stream, Uint8Array.of(0)]));
    expect(trailing, trailing).toMatch(/after the END record/);
    const seq = stream.slice();
    seq[STREAM_HEADER_SIZE + 4] = 5;
    expect(attempt(seq)).toMatch(/header checksum/);
  });

  it('never lets a corrupted stream escape as anything but a VfioError, nor touch the neighbouring vGPU', () => {
    const { r, src } = busySource();
    const neighbour = openVgpu(r.t4Parent, 'nvidia-319', randomUUID());
    neighbour.fbWrite(0, new Uint8Array(8192).fill(0xee));
    const before = neighbour.device.fb.slice();
    src.file.setMigrationState(MigState.STOP_COPY);
    const good = drain(src.file);
    const dst = dstOf(r);
    fc.assert(
      fc.property(
        fc.array(
          fc.record({ at: fc.nat({ max: good.length - 1 }), flip: fc.integer({ min: 1, max: 255 }) }),
          { minLength: 1, maxLength: 4 },
        ),
        fc.integer({ min: 1, max: 70000 }),
        (flips, chunk) => {
          const s = good.slice();
          for (const f of flips) s[f.at] ^= f.flip;
          if (dst.file.migrationState === MigState.ERROR) dst.file.reset();
          const { writeError, stopError } = resume(dst, s, chunk);
          for (const e of [writeError, stopError]) if (e !== undefined) expect(e).toBeInstanceOf(VfioError);
          expect(writeError ?? stopError).toBeDefined();
        },
      ),
      { numRuns: 150 },
    );
    expect(Buffer.compare(neighbour.device.fb, before)).toBe(0);
  });
});

describe('BAR3 in the migration stream', () => {
  /** Record tags in stream order. */
  function tags(stream: Uint8Array): number[] {
    const v = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
    const out: number[] = [];
    let at = STREAM_HEADER_SIZE;
    while (at < stream.length) {
      const tag = v.getUint32(at, true);
      out.push(tag);
      const a = v.getUint32(at + 8, true);
      const b = v.getUint32(at + 12, true);
      at += RECORD_HEADER_SIZE + (tag === TAG_STATE ? a : tag === 3 ? 0 : b * MIG_PAGE_SIZE);
    }
    return out;
  }

  it('costs nothing while BAR3 was never mapped or written', () => {
    const { src } = busySource();
    src.file.setMigrationState(MigState.STOP_COPY);
    expect(tags(drain(src.file))).not.toContain(TAG_BAR3);
  });

  it('carries what the guest wrote through its BAR3 mapping, non-zero pages only, and replaces the destination’s', () => {
    const { r, src } = busySource();
    const m = src.file.mmap(vfioPciIndexToOffset(3), BAR3_SIZE);
    const bar3 = m.memory.bytes.subarray(m.memoryOffset, m.memoryOffset + BAR3_SIZE);
    bar3.fill(0xa5, 0, 3 * MIG_PAGE_SIZE);
    bar3[BAR3_SIZE - 1] = 0x3c;
    src.file.setMigrationState(MigState.STOP_COPY);
    const size = src.device.migration.stopCopySize();
    const stream = drain(src.file);
    expect(stream.length).toBe(size);
    expect(tags(stream).filter((t) => t === TAG_BAR3)).toHaveLength(2);
    const dst = dstOf(r);
    // stale contents on the destination must not survive the resume
    const stale = Uint8Array.of(0xee);
    dst.file.write(vfioPciIndexToOffset(3) + 5 * MIG_PAGE_SIZE, stale);
    const { writeError, stopError } = resume(dst, stream, 4093);
    expect(writeError).toBeUndefined();
    expect(stopError).toBeUndefined();
    expect(Buffer.compare(dst.device.bar3, src.device.bar3)).toBe(0);
    expect(dst.device.bar3[5 * MIG_PAGE_SIZE]).toBe(0);
  });

  /** The stream's records (header + payload each) after the stream header. */
  function records(stream: Uint8Array): Uint8Array[] {
    const v = new DataView(stream.buffer, stream.byteOffset, stream.byteLength);
    const out: Uint8Array[] = [];
    let at = STREAM_HEADER_SIZE;
    while (at < stream.length) {
      const tag = v.getUint32(at, true);
      const a = v.getUint32(at + 8, true);
      const b = v.getUint32(at + 12, true);
      const len = RECORD_HEADER_SIZE + (tag === TAG_STATE ? a : tag === 3 ? 0 : b * MIG_PAGE_SIZE);
      out.push(stream.slice(at, at + len));
      at += len;
    }
    return out;
  }

  /** Join records again, numbering them in their new order with valid header checksums. */
  function restream(head: Uint8Array, recs: Uint8Array[]): Uint8Array {
    recs.forEach((r, seq) => {
      const v = new DataView(r.buffer, r.byteOffset, r.byteLength);
      v.setUint32(4, seq, true);
      if (v.getUint32(0, true) === 3) v.setUint32(8, seq, true);
      v.setUint32(20, crc32(r.subarray(0, 20)) >>> 0, true);
    });
    return new Uint8Array(Buffer.concat([head, ...recs]));
  }

  it('refuses a BAR3 record outside BAR3 or after the device state, and loads nothing of it', () => {
    const { r, src } = busySource();
    src.file.write(vfioPciIndexToOffset(3), Uint8Array.of(1));
    src.file.setMigrationState(MigState.STOP_COPY);
    const stream = drain(src.file);
    const head = stream.slice(0, STREAM_HEADER_SIZE);
    const recs = records(stream);
    const bar3At = recs.findIndex((x) => new DataView(x.buffer).getUint32(0, true) === TAG_BAR3);
    expect(bar3At).toBeGreaterThan(0);
    const dst = dstOf(r);
    const attempt = (s: Uint8Array) => {
      if (dst.file.migrationState === MigState.ERROR) dst.file.reset();
      return String((resume(dst, s).writeError as VfioError | undefined)?.message);
    };
    expect(
      attempt(
        restream(
          head,
          recs.map((x) => x.slice()),
        ),
      ),
    ).toBe('undefined');
    expect(dst.device.bar3[0]).toBe(1);

    const outside = recs.map((x) => x.slice());
    new DataView(outside[bar3At].buffer).setUint32(8, BAR3_SIZE / MIG_PAGE_SIZE, true);
    expect(attempt(restream(head, outside))).toMatch(/BAR3 record names pages 8192/);
    const late = recs.map((x) => x.slice());
    const [moved] = late.splice(bar3At, 1);
    late.splice(late.length - 1, 0, moved); // after STATE, before END
    expect(attempt(restream(head, late))).toMatch(/BAR3 record came after the device state/);
    expect(dst.device.bar3.every((b) => b === 0)).toBe(true);
  });
});
