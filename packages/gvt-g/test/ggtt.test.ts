import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GTT_PAGE_SIZE, GVT_GTT_START_OFFSET } from '../src/index.js';
import { newParent, openVgpu, UUID_B } from './helpers.js';

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
