/**
 * BAR0's value road (readValue/writeValue, the guest's trapped MMIO as numbers): it answers as
 * the byte road does, the register bank (read-only, W1C and hooked registers, channel
 * registers) and the mailbox window past it, and leaves the vGPU in the same state.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { openVgpu, rig } from './helpers.js';

function outcome(run: () => unknown): { value?: unknown; code?: string } {
  try {
    return { value: run() };
  } catch (err) {
    return { code: (err as { code?: string }).code ?? String(err) };
  }
}

describe('NVIDIA vGPU BAR0 value accesses', () => {
  it('answer as the byte road: values, registers, mailbox and interrupts (property)', () => {
    const offset = fc.oneof(
      {
        weight: 4,
        arbitrary: fc.constantFrom(0x0, 0x4, 0x8, 0xc, 0x10, 0x14, 0x24, 0x28, 0x100, 0x104, 0x108),
      },
      fc.integer({ min: 0, max: 0x3ff }).map((d) => d * 4),
      fc.integer({ min: 0, max: 0x2000 - 4 }),
    );
    fc.assert(
      fc.property(
        fc.array(
          fc.record({
            write: fc.boolean(),
            offset,
            size: fc.constantFrom(1 as const, 2 as const, 4 as const, 4 as const),
            value: fc.oneof(fc.integer({ min: 0, max: 0xffffffff }), fc.constant(0xffffffff)),
          }),
          { maxLength: 60 },
        ),
        (ops) => {
          const { t4Parent } = rig();
          const byValue = openVgpu(t4Parent, 'nvidia-319');
          const byBytes = openVgpu(t4Parent, 'nvidia-319');
          const port = byValue.file.regionPort(0);
          for (const o of ops) {
            // The RPC doorbell runs the manager on the mailbox: both sides alike, but keep it rare.
            if (o.write && o.offset >= 0x20 && o.offset < 0x24) continue;
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
              expect(outcome(() => port.readValue(o.offset, o.size))).toEqual(a);
            }
          }
          for (let at = 0; at < 0x2000; at += 4) expect(byValue.reg(at)).toBe(byBytes.reg(at));
          expect(byValue.msi()).toBe(byBytes.msi());
          expect(byValue.file.regionCounters(0)).toEqual(byBytes.file.regionCounters(0));
        },
      ),
      { numRuns: 15 },
    );
  });
});
