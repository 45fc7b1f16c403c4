import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GTT_PAGE_SIZE, GVT_GTT_START_OFFSET } from '../src/index.js';
import { newParent, openVgpu, UUID_B } from './helpers.js';

/** VFIO_DEVICE_RESET, then memory decode back on, as the firmware does after a reboot. */
function reset(d: ReturnType<typeof openVgpu>): void {
  d.file.reset();
  d.write32(7, 0x04, 0x0006);
}

describe('GGTT shadowing', () => {
  it('checks, translates and pins a present PTE and writes the host GGTT; reads return the guest value', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const page = d.vgpu.resources.high.base / GTT_PAGE_SIZE;
    d.writePte(page, 0x3000 + 0x3); // frame 3, present + a flag bit
    expect(d.readPte(page)).toBe(0x3003);
    expect(d.parent.gpu.ggtt.pte[page]).toBe(0x3003);
    expect(d.host.dma.pinCount).toBe(1);
    // the host entry reaches the guest page
    d.host.memory.bytes[0x3000 + 5] = 0x77;
    expect(d.parent.gpu.ggtt.pages[page]?.[5]).toBe(0x77);
  });

  it('takes a PTE in two 4-byte halves, as a 32-bit guest writes it', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const page = d.vgpu.resources.low.base / GTT_PAGE_SIZE;
    d.write32(0, GVT_GTT_START_OFFSET + page * 8, 0x5001);
    d.write32(0, GVT_GTT_START_OFFSET + page * 8 + 4, 0);
    expect(d.readPte(page)).toBe(0x5001);
    expect(d.parent.gpu.ggtt.pte[page]).toBe(0x5001);
  });

  it('refuses and logs a PTE outside the ballooned ranges, storing nothing', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const hostPage = 0; // the host's own GM
    d.writePte(hostPage, 0x1001);
    expect(d.readPte(hostPage)).toBe(0);
    expect(d.parent.gpu.ggtt.pte[hostPage]).toBe(0);
    expect(d.vgpu.ggtt.stats.refusedOutOfRange).toBe(1);
    expect(d.host.log.entries.some((e) => e.level === 'warn' && e.message.includes('outside'))).toBe(true);
  });

  it('keeps a PTE to unmapped guest memory for the guest but leaves the host entry on scratch', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const page = d.vgpu.resources.low.base / GTT_PAGE_SIZE;
    d.writePte(page, 0x7000_0000 + 1); // beyond the 4 MiB of guest memory
    expect(d.readPte(page)).toBe(0x7000_0001);
    expect(d.parent.gpu.ggtt.pte[page]).toBe(0);
    expect(d.vgpu.ggtt.stats.refusedUnmapped).toBe(1);
  });

  it('unpins when an entry is cleared or replaced, and shares one pin between entries of the same frame', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const page = d.vgpu.resources.high.base / GTT_PAGE_SIZE;
    d.writePte(page, 0x2001);
    d.writePte(page + 1, 0x2001);
    expect(d.host.dma.pinCount).toBe(1);
    d.writePte(page, 0x4001);
    expect(d.host.dma.pinCount).toBe(2);
    d.writePte(page, 0);
    d.writePte(page + 1, 0);
    expect(d.host.dma.pinCount).toBe(0);
    expect(d.parent.gpu.ggtt.pte[page]).toBe(0);
  });

  it('falls back to scratch when the guest unmaps memory under a live entry', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const page = d.vgpu.resources.high.base / GTT_PAGE_SIZE;
    d.writePte(page, 0x2001);
    d.host.iova.unmap(0, d.host.memory.size);
    expect(d.parent.gpu.ggtt.pte[page]).toBe(0);
    expect(d.readPte(page)).toBe(0x2001);
  });

  it('releases every pin and host entry when the device closes', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const page = d.vgpu.resources.high.base / GTT_PAGE_SIZE;
    d.writePte(page, 0x2001);
    d.file.close();
    expect(d.parent.gpu.ggtt.pte[page]).toBe(0);
    expect(d.host.dma.pinCount).toBe(0);
  });

  it('a reset clears every entry written since the last one and releases its pins, again after each reset', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const low = d.vgpu.resources.low.base / GTT_PAGE_SIZE;
    const high = d.vgpu.resources.high.base / GTT_PAGE_SIZE;
    for (let round = 0; round < 3; round++) {
      d.writePte(low + round, 0x2001);
      d.writePte(high + 7, 0x3001 + round * 0x1000);
      d.writePte(high + 8, 0); // written, not present
      expect(d.host.dma.pinCount).toBe(2);
      reset(d);
      for (const page of [low + round, high + 7, high + 8]) {
        expect(d.readPte(page)).toBe(0);
        expect(d.parent.gpu.ggtt.pte[page]).toBe(0);
        expect(d.parent.gpu.ggtt.pages[page]).toBeUndefined();
      }
      expect(d.host.dma.pinCount).toBe(0);
    }
    // After resets an unmap still finds the live entries.
    d.writePte(high, 0x2001);
    d.host.iova.unmap(0, d.host.memory.size);
    expect(d.parent.gpu.ggtt.pte[high]).toBe(0);
    expect(d.readPte(high)).toBe(0x2001);
  });

  it('entries, host entries and pins follow a model over any writes, halves and resets (property)', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const low = d.vgpu.resources.low.base / GTT_PAGE_SIZE;
    const high = d.vgpu.resources.high.base / GTT_PAGE_SIZE;
    const pages = [low, low + 1, low + 2, high, high + 1, high + 2];
    // 4 MiB of guest memory: frames 0..0x3ff are mapped.
    const pte = fc.oneof(
      fc.constant(0),
      fc.nat({ max: 0x3ff }).map((f) => f * GTT_PAGE_SIZE + 1),
      fc.nat({ max: 0x3 }).map((f) => f * GTT_PAGE_SIZE + 1),
      fc.nat({ max: 2 ** 40 }),
    );
    const op = fc.oneof(
      fc.record({ kind: fc.constant('pte' as const), at: fc.nat({ max: 5 }), value: pte }),
      fc.record({
        kind: fc.constant('half' as const),
        at: fc.nat({ max: 5 }),
        high: fc.boolean(),
        value: fc.nat({ max: 0xffffffff }),
      }),
      fc.record({ kind: fc.constant('reset' as const) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 40 }), (ops) => {
        reset(d);
        const model = new Map<number, number>();
        for (const o of ops) {
          if (o.kind === 'reset') {
            reset(d);
            model.clear();
          } else if (o.kind === 'pte') {
            d.writePte(pages[o.at], o.value);
            model.set(pages[o.at], o.value);
          } else {
            const page = pages[o.at];
            d.write32(0, GVT_GTT_START_OFFSET + page * 8 + (o.high ? 4 : 0), o.value);
            const old = model.get(page) ?? 0;
            const lo = old % 2 ** 32;
            const hi = Math.floor(old / 2 ** 32);
            model.set(page, o.high ? lo + o.value * 2 ** 32 : hi * 2 ** 32 + o.value);
          }
        }
        const frames = new Set<number>();
        for (const page of pages) {
          const value = model.get(page) ?? 0;
          expect(d.readPte(page)).toBe(value);
          const frame = Math.floor(value / GTT_PAGE_SIZE) % 2 ** 34;
          const shadowed = value % 2 === 1 && frame <= 0x3ff;
          if (shadowed) frames.add(frame);
          expect(d.parent.gpu.ggtt.pte[page]).toBe(
            shadowed ? frame * GTT_PAGE_SIZE + (value % GTT_PAGE_SIZE) : 0,
          );
        }
        expect(d.host.dma.pinCount).toBe(frames.size);
      }),
      { numRuns: 200 },
    );
  });

  it('never touches another vGPU entry, whatever index and value one vGPU writes (property)', () => {
    const parent = newParent(512);
    const a = openVgpu(parent, 'i915-GVTg_V5_8');
    const b = openVgpu(parent, 'i915-GVTg_V5_8', UUID_B);
    const bPage = b.vgpu.resources.low.base / GTT_PAGE_SIZE;
    b.writePte(bPage, 0x9001);
    b.writePte(b.vgpu.resources.high.base / GTT_PAGE_SIZE, 0xa001);
    const before = parent.gpu.ggtt.pte.slice();
    const pagesA = new Set<number>();
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: (8 * 1024 * 1024) / 8 - 1 }),
        fc.oneof(
          fc.nat({ max: 2 ** 53 - 1 }),
          fc.constant(0x9001),
          fc.nat({ max: 0x400000 }).map((v) => v | 1),
        ),
        (page, value) => {
          a.writePte(page, value);
          if (a.vgpu.ggtt.localIndex(page) >= 0) pagesA.add(page);
        },
      ),
      { numRuns: 500 },
    );
    const after = parent.gpu.ggtt.pte;
    for (let p = 0; p < after.length; p++) {
      if (pagesA.has(p)) continue;
      if (after[p] !== before[p]) throw new Error(`host GGTT entry ${p} changed outside vGPU A`);
    }
    expect(b.readPte(bPage)).toBe(0x9001);
  });
});
