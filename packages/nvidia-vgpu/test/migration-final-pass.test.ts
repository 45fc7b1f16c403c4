/**
 * The final pass of a saving stream with payload checks: runs are found ahead of the one handed
 * out and checked on a background thread (core's migrationChecksumAhead). The stream's bytes are
 * what format.ts says, checked here against an encoder of this file's own; remaining() counts
 * the runs found ahead; a stream dropped mid-way closes its checker before the vGPU runs again.
 */
import { crc32 } from 'node:zlib';
import { type ChecksumAhead, MigState, VfioError } from '@vfiokit/core';
import type { DeviceFile } from '@vfiokit/core/host';
import fc from 'fast-check';
import { describe, expect, it, vi } from 'vitest';
import {
  MAX_RUN_PAGES,
  MIG_PAGE_SIZE,
  RECORD_HEADER_SIZE,
  STREAM_HEADER_SIZE,
  TAG_FB,
} from '../src/index.js';
import { type OpenVgpu, openVgpu, rig } from './helpers.js';

/** Every checker the saving streams make, with the migration state of its device at close(). */
const made: { checker: ChecksumAhead; closedIn: MigState | undefined; device: { migState: MigState } }[] = [];
let deviceOfNext: { migState: MigState } | undefined;

vi.mock('@vfiokit/core', async (importOriginal) => {
  const core = await importOriginal<typeof import('@vfiokit/core')>();
  return {
    ...core,
    migrationChecksumAhead(memory: Uint8Array): ChecksumAhead {
      const checker = core.migrationChecksumAhead(memory);
      const entry = {
        checker,
        closedIn: undefined as MigState | undefined,
        device: deviceOfNext ?? { migState: MigState.ERROR },
      };
      made.push(entry);
      return {
        get pending() {
          return checker.pending;
        },
        submit: (offset, length) => checker.submit(offset, length),
        next: () => checker.next(),
        close() {
          entry.closedIn ??= entry.device.migState;
          checker.close();
        },
      };
    },
  };
});

/** T4-4C (nvidia-319) has 4 GiB: 20 MiB and 4 pages, 21 runs, the last of 4 pages; more than the 8 MiB checked ahead. */
const PER_GIB = (5 << 20) + MIG_PAGE_SIZE;
const FB_BYTES = 4 * PER_GIB;

function source(): { r: ReturnType<typeof rig>; src: OpenVgpu } {
  const r = rig({ framebufferBytesPerGiB: PER_GIB });
  const src = openVgpu(r.t4Parent, 'nvidia-319');
  expect(src.device.fbSize).toBe(FB_BYTES);
  const fb = src.device.fb;
  for (let i = 0; i < fb.length; i += 64) fb[i] = Math.imul(i, 2654435761) >>> 24;
  deviceOfNext = src.device;
  return { r, src };
}

/**
 * Read the stream to its end asking for pieces of the given sizes (cycling); `after` holds the
 * bytes read so far and `size()` after each read.
 */
function drain(
  file: DeviceFile,
  sizes: number[],
  size: () => number,
): { stream: Uint8Array; after: [number, number][] } {
  const parts: Uint8Array[] = [];
  const after: [number, number][] = [];
  let read = 0;
  for (let k = 0; ; k++) {
    let c: Uint8Array;
    try {
      c = file.migrationRead(sizes[k % sizes.length]);
    } catch (err) {
      if (err instanceof VfioError && err.code === 'ENOMSG') break;
      throw err;
    }
    if (c.length === 0) break;
    parts.push(c.slice());
    read += c.length;
    after.push([read, size()]);
  }
  return { stream: new Uint8Array(Buffer.concat(parts)), after };
}

/** An FB record as format.ts lays it out, with node:zlib's CRC32s. */
function fbRecord(seq: number, first: number, pages: number, fb: Uint8Array): Uint8Array {
  const payload = fb.subarray(first * MIG_PAGE_SIZE, (first + pages) * MIG_PAGE_SIZE);
  const h = Buffer.alloc(RECORD_HEADER_SIZE);
  h.writeUInt32LE(TAG_FB, 0);
  h.writeUInt32LE(seq, 4);
  h.writeUInt32LE(first, 8);
  h.writeUInt32LE(pages, 12);
  h.writeUInt32LE(crc32(payload) >>> 0, 16);
  h.writeUInt32LE(crc32(h.subarray(0, 20)) >>> 0, 20);
  return Buffer.concat([h, payload]);
}

/** The runs a final pass sends for a set of dirty pages: maximal runs in page order, cut at 256 pages. */
function runsOf(dirty: Set<number>, pages: number): [number, number][] {
  const runs: [number, number][] = [];
  for (let p = 0; p < pages; p++) {
    if (!dirty.has(p)) continue;
    const last = runs.at(-1);
    if (last && last[0] + last[1] === p && last[1] < MAX_RUN_PAGES) last[1]++;
    else runs.push([p, 1]);
  }
  return runs;
}

function resumeInto(dst: OpenVgpu, stream: Uint8Array): void {
  dst.file.setMigrationState(MigState.RESUMING);
  for (let at = 0; at < stream.length; at += 777_777)
    dst.file.migrationWrite(stream.subarray(at, at + 777_777));
  dst.file.setMigrationState(MigState.STOP);
}

/** Read sizes, a record header's few bytes to several runs; one 1 MiB read in each cycle keeps the test short. */
const readSizesArb = fc
  .array(fc.oneof(fc.integer({ min: 1, max: 100 }), fc.integer({ min: 4096, max: 3 << 20 })), {
    maxLength: 7,
  })
  .map((sizes) => [...sizes, 1 << 20]);

describe('the final pass, checked ahead', () => {
  it('stop-copy: the records format.ts lays out, with node:zlib CRCs, and stopCopySize() exact after every read (property over read sizes)', () => {
    const { r, src } = source();
    const pages = FB_BYTES / MIG_PAGE_SIZE;
    const expected = Buffer.concat(
      Array.from({ length: Math.ceil(pages / MAX_RUN_PAGES) }, (_, k) =>
        fbRecord(k, k * MAX_RUN_PAGES, Math.min(MAX_RUN_PAGES, pages - k * MAX_RUN_PAGES), src.device.fb),
      ),
    );
    const dst = openVgpu(r.t4Parent, 'nvidia-319');
    fc.assert(
      fc.property(readSizesArb, (sizes) => {
        src.file.setMigrationState(MigState.STOP_COPY);
        const total = src.device.migration.stopCopySize();
        const { stream, after } = drain(src.file, sizes, () => src.device.migration.stopCopySize());
        expect(stream.length).toBe(total);
        for (const [read, left] of after) expect(left).toBe(stream.length - read);
        expect(
          Buffer.compare(stream.subarray(STREAM_HEADER_SIZE, STREAM_HEADER_SIZE + expected.length), expected),
        ).toBe(0);
        dst.file.setMigrationState(MigState.STOP);
        resumeInto(dst, stream);
        expect(Buffer.compare(dst.device.fb, src.device.fb)).toBe(0);
        dst.file.setMigrationState(MigState.RUNNING);
        src.file.setMigrationState(MigState.STOP);
        src.file.setMigrationState(MigState.RUNNING);
      }),
      { numRuns: 4 },
    );
  });

  it('pre-copy: the final pass sends the scattered dirty runs in page order, each checked (property)', () => {
    const { r, src } = source();
    const pages = FB_BYTES / MIG_PAGE_SIZE;
    const spanArb = fc.record({
      page: fc.nat(pages - 1),
      count: fc.integer({ min: 1, max: 700 }),
      byte: fc.nat(255),
    });
    const dst = openVgpu(r.t4Parent, 'nvidia-319');
    fc.assert(
      fc.property(fc.array(spanArb, { minLength: 1, maxLength: 12 }), (spans) => {
        src.file.setMigrationState(MigState.PRE_COPY);
        const pre = drain(src.file, [1 << 20], () => 0).stream;
        const dirty = new Set<number>();
        for (const { page, count, byte } of spans) {
          const n = Math.min(count, pages - page);
          src.fbWrite(page * MIG_PAGE_SIZE + 5, new Uint8Array(n * MIG_PAGE_SIZE - 10).fill(byte));
          for (let p = page; p < page + n; p++) dirty.add(p);
        }
        src.file.setMigrationState(MigState.STOP_COPY);
        const rest = drain(src.file, [300_000], () => 0).stream;
        // the FB records first, then BAR3 (none here), the device state and END
        const seq0 = Math.ceil(pages / MAX_RUN_PAGES);
        const expected = Buffer.concat(
          runsOf(dirty, pages).map(([p, n], k) => fbRecord(seq0 + k, p, n, src.device.fb)),
        );
        expect(Buffer.compare(rest.subarray(0, expected.length), expected)).toBe(0);
        resumeInto(dst, new Uint8Array(Buffer.concat([pre, rest])));
        expect(Buffer.compare(dst.device.fb, src.device.fb)).toBe(0);
        dst.file.setMigrationState(MigState.RUNNING);
        src.file.setMigrationState(MigState.STOP);
        src.file.setMigrationState(MigState.RUNNING);
      }),
      { numRuns: 8 },
    );
  });

  it('a stream dropped in the middle of its final pass closes its checker before the vGPU runs again; the next stream is whole', () => {
    const { r, src } = source();
    made.length = 0;
    src.file.setMigrationState(MigState.STOP_COPY);
    for (let i = 0; i < 3; i++) expect(src.file.migrationRead(1 << 20).length).toBeGreaterThan(0);
    expect(made).toHaveLength(1);
    expect(made[0].checker.pending).toBeGreaterThan(0); // runs were checked ahead, not taken
    src.file.setMigrationState(MigState.STOP);
    expect(made[0].closedIn).toBe(MigState.STOP_COPY);
    expect(made[0].checker.pending).toBe(0);
    expect(() => made[0].checker.next()).toThrow(/closed/);
    // the vGPU runs and its framebuffer changes under the pages that were being checked
    src.file.setMigrationState(MigState.RUNNING);
    src.fbWrite(0, new Uint8Array(8 << 20).fill(0xc3));
    src.file.setMigrationState(MigState.STOP_COPY);
    const { stream } = drain(src.file, [1 << 20], () => 0);
    const dst = openVgpu(r.t4Parent, 'nvidia-319');
    resumeInto(dst, stream);
    expect(Buffer.compare(dst.device.fb, src.device.fb)).toBe(0);
    expect(dst.device.fb[4096]).toBe(0xc3);
    // a reset drops the open stream the same way
    src.file.setMigrationState(MigState.RUNNING);
    src.file.setMigrationState(MigState.STOP_COPY);
    src.file.migrationRead(1 << 20);
    const last = made.at(-1);
    src.file.reset();
    expect(last?.checker.pending).toBe(0);
    expect(() => last?.checker.next()).toThrow(/closed/);
  });

  it('a pre-copy stream whose device file closes stops tracking dirty pages and closes its checker at once; the state stays, and the next stream is whole', () => {
    const { r, src } = source();
    made.length = 0;
    src.file.setMigrationState(MigState.PRE_COPY);
    expect(src.file.migrationRead(1 << 20).length).toBeGreaterThan(0);
    expect(src.device.onPageDirtied).toBeDefined();
    expect(src.device.dirtyPages).toBeDefined();
    expect(made).toHaveLength(1);
    // the VMM goes away in pre-copy (mtty_close's mtty_disable_files, mlx5vf_disable_fds)
    src.file.close();
    expect(src.device.onPageDirtied).toBeUndefined();
    expect(src.device.dirtyPages).toBeUndefined();
    expect(src.device.dirtyCount).toBe(0);
    expect(made[0].closedIn).toBe(MigState.PRE_COPY);
    expect(() => made[0].checker.next()).toThrow(/closed/);
    // the next device file finds PRE_COPY with none of the stream; stopping finishes nothing
    src.file.open();
    expect(src.file.migrationState).toBe(MigState.PRE_COPY);
    expect(() => src.file.migrationRead(1 << 20)).toThrow(/EBADF: device .*state PRE_COPY/);
    src.file.setMigrationState(MigState.STOP_COPY);
    expect(() => src.file.migrationRead(1 << 20)).toThrow(/EBADF: device .*state STOP_COPY/);
    expect(src.device.onPageDirtied).toBeUndefined();
    expect(made).toHaveLength(1);
    // out and back in: a pre-copy stream of its own carries every page, written before or during it
    src.file.setMigrationState(MigState.STOP);
    src.file.setMigrationState(MigState.RUNNING);
    src.fbWrite(0, new Uint8Array(3 << 20).fill(0x5e));
    src.file.setMigrationState(MigState.PRE_COPY);
    const pre = drain(src.file, [1 << 20], () => 0).stream;
    src.fbWrite(9 << 20, new Uint8Array(1 << 20).fill(0xa7));
    src.file.setMigrationState(MigState.STOP_COPY);
    const rest = drain(src.file, [1 << 20], () => 0).stream;
    const dst = openVgpu(r.t4Parent, 'nvidia-319');
    resumeInto(dst, new Uint8Array(Buffer.concat([pre, rest])));
    expect(Buffer.compare(dst.device.fb, src.device.fb)).toBe(0);
    expect(dst.device.fb[9 << 20]).toBe(0xa7);
  });
});
