/**
 * BAR0's value road (readValue/writeValue, the guest's trapped MMIO as numbers): it must answer
 * exactly as the byte road does, registers with hooks, untracked offsets, PVINFO, the GGTT
 * window and the undecoded hole alike, and leave the vGPU in the same state.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GVT_GTT_START_OFFSET, GVT_MMIO_SIZE } from '../src/constants.js';
import { newParent, openVgpu, UUID_A, UUID_B } from './helpers.js';

/**
 * Tracked registers with behaviour: forcewake and its ack, GDRST, GUC_STATUS (cleared by a read),
 * the master IRQ and an IIR/IER group, the render ring's ELSP (reads 0), the DPLL enables and
 * DPLL_STATUS (computed from them), PVINFO, a workaround register, the fuses.
 */
const KNOWN = [
  0xa188, 0x130044, 0x941c, 0xc000, 0x44200, 0x44308, 0x4430c, 0x2230, 0x46010, 0x46014, 0x6c060, 0x78000,
  0x7800c, 0x4090, 0x42000,
];

function outcome(run: () => unknown): { value?: unknown; code?: string } {
  try {
    return { value: run() };
  } catch (err) {
    return { code: (err as { code?: string }).code ?? String(err) };
  }
}

describe('GVT-g BAR0 value accesses', () => {
  it('answer as the byte road: values, vreg, GGTT and interrupts (property)', () => {
    const offset = fc.oneof(
      { weight: 8, arbitrary: fc.constantFrom(...KNOWN) },
      fc.constantFrom(...KNOWN).map((o) => o + 2),
      fc.integer({ min: 0, max: GVT_MMIO_SIZE / 4 - 1 }).map((d) => d * 4),
      fc.integer({ min: 0, max: GVT_MMIO_SIZE + 16 }),
      fc.integer({ min: 0, max: 63 }).map((n) => GVT_GTT_START_OFFSET + n * 4),
      fc.integer({ min: GVT_MMIO_SIZE, max: GVT_GTT_START_OFFSET - 4 }),
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            write: fc.boolean(),
            offset,
            size: fc.constantFrom(1 as const, 2 as const, 4 as const, 4 as const),
            value: fc.oneof(
              fc.integer({ min: 0, max: 0xffffffff }),
              fc.constant(0xffffffff),
              fc.constant(0x10001),
            ),
          }),
          { maxLength: 60 },
        ),
        (ops) => {
          const parent = newParent(512);
          const byValue = openVgpu(parent, 'i915-GVTg_V5_8', UUID_A);
          const byBytes = openVgpu(parent, 'i915-GVTg_V5_8', UUID_B);
          const port = byValue.file.regionPort(0);
          const before = [
            Uint32Array.from(byValue.vgpu.regs.words),
            Uint32Array.from(byBytes.vgpu.regs.words),
          ];
          for (const o of ops) {
            const bytes = new Uint8Array(o.size);
            if (o.write) {
              for (let i = 0; i < o.size; i++) bytes[i] = (o.value >>> (8 * i)) & 0xff;
              const a = outcome(() => byBytes.file.writeRegion(0, o.offset, bytes));
              const b = outcome(() => port.writeValue(o.offset, o.size, o.value));
              expect(b.code).toBe(a.code);
            } else {
              const a = outcome(() => {
                byBytes.file.readRegion(0, o.offset, bytes);
                let v = 0;
                for (let i = o.size - 1; i >= 0; i--) v = v * 256 + bytes[i];
                return v;
              });
              const b = outcome(() => port.readValue(o.offset, o.size));
              // PVINFO (vgt_id, the GM ranges, fences) is each vGPU's own.
              if (o.offset + o.size > 0x78000 && o.offset < 0x79000) continue;
              expect(b).toEqual(a);
            }
          }
          // The registers the accesses changed, and to what, are the same on both.
          const changed = (words: Uint32Array, from: Uint32Array) => {
            const out: string[] = [];
            for (let i = 0; i < words.length; i++) if (words[i] !== from[i]) out.push(`${i * 4}=${words[i]}`);
            return out;
          };
          expect(changed(byValue.vgpu.regs.words, before[0])).toEqual(
            changed(byBytes.vgpu.regs.words, before[1]),
          );
          for (let page = 0; page < 32; page++) expect(byValue.readPte(page)).toBe(byBytes.readPte(page));
          expect(byValue.msiCount()).toBe(byBytes.msiCount());
          expect(byValue.file.regionCounters(0)).toEqual(byBytes.file.regionCounters(0));
        },
      ),
      { numRuns: 12 },
    );
  });

  it("reach the registers' hooks: a computed read (DPLL_STATUS) and a write handshake (forcewake)", () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const port = d.file.regionPort(0);
    port.writeValue(0x46014, 4, 0x8000_0000); // DPLL1 enable
    expect(port.readValue(0x6c060, 4) & (1 << 8)).not.toBe(0); // DPLL1 locked
    expect(port.readValue(0x6c060, 4)).toBe(d.reg(0x6c060));
    port.writeValue(0xa188, 4, 0x0001_0001); // FORCEWAKE_RENDER_GEN9: masked write of bit 0
    expect(port.readValue(0x130044, 4) & 1).toBe(1); // FORCEWAKE_ACK_GT_GEN9
    expect(d.file.regionCounters(0)).toMatchObject({ reads: 4, writes: 2, errors: 0 }); // d.reg() is a read too
  });
});
