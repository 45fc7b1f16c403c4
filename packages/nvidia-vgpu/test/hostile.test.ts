import { randomUUID } from 'node:crypto';
import { VfioError } from '@vfiokit/core';
import { vfioPciIndexToOffset } from '@vfiokit/core/abi';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  CH_PUT,
  CHANNEL_STRIDE,
  MAILBOX_OFFSET,
  MAX_CHANNELS,
  REG_CHANNEL_BASE,
  REG_RPC_DOORBELL,
  RPC_CHANNEL_CREATE,
  RPC_OK,
} from '../src/index.js';
import { openVgpu, rig } from './helpers.js';

/** Two vGPUs side by side on one T4; the victim's framebuffer holds a known pattern. */
function sideBySide() {
  const r = rig();
  const attacker = openVgpu(r.t4Parent, 'nvidia-319', randomUUID());
  const victim = openVgpu(r.t4Parent, 'nvidia-319', randomUUID());
  for (let i = 0; i < victim.device.fbSize; i++) victim.device.fb[i] = (i * 251) & 0xff;
  const pattern = victim.device.fb.slice();
  return { r, attacker, victim, pattern };
}

const onlyVfioErrors = (fn: () => void) => {
  try {
    fn();
  } catch (err) {
    if (!(err instanceof VfioError)) throw err;
  }
};

describe('a hostile guest', () => {
  it('cannot crash the host or reach the neighbour with random RPC messages', () => {
    const { attacker, victim, pattern } = sideBySide();
    const bar0 = vfioPciIndexToOffset(0);
    fc.assert(
      fc.property(
        fc.uint8Array({ minLength: 0, maxLength: 256 }),
        fc.nat({ max: 0x1000 }),
        (bytes, doorbell) => {
          onlyVfioErrors(() => {
            if (bytes.length) attacker.file.write(bar0 + MAILBOX_OFFSET, bytes);
            attacker.setReg(REG_RPC_DOORBELL, doorbell);
          });
          expect(attacker.reg(0)).toBeGreaterThan(0); // still answering
        },
      ),
      { numRuns: 400 },
    );
    expect(Buffer.compare(victim.device.fb, pattern)).toBe(0);
  });

  it('cannot reach the neighbour with random push buffers, PUT values and runaway channels', () => {
    const { r, attacker, victim, pattern } = sideBySide();
    const channels: [number, number][] = [];
    for (let i = 0; i < 4; i++) channels.push(attacker.channel(4096));
    fc.assert(
      fc.property(
        fc.nat({ max: 3 }),
        fc.array(
          fc.oneof(
            fc.nat({ max: 0xffffffff }),
            fc.constantFrom(0x01000000, 0x02000000, 0x03000000, 0x04000000, 0x01000001),
            fc.nat({ max: attacker.device.fbSize + 8192 }),
          ),
          { maxLength: 64 },
        ),
        fc.nat({ max: 8192 }),
        (which, words, put) => {
          const [ch, pb] = channels[which];
          onlyVfioErrors(() => {
            attacker.fbWords(pb, words);
            attacker.setReg(REG_CHANNEL_BASE + ch * CHANNEL_STRIDE + CH_PUT, put);
            r.t4.advance(2_000_000);
          });
        },
      ),
      { numRuns: 300 },
    );
    expect(Buffer.compare(victim.device.fb, pattern)).toBe(0);
    // the victim's own engine work still runs
    const [ch, pb] = victim.channel(4096);
    expect(ch).toBeLessThan(MAX_CHANNELS);
    expect(victim.rpc([RPC_CHANNEL_CREATE, pb, 0, 4096]).result).toBe(RPC_OK);
  });

  it('cannot reach the neighbour with random BAR writes anywhere in its regions', () => {
    const { attacker, victim, pattern } = sideBySide();
    fc.assert(
      fc.property(
        fc.constantFrom(0, 1, 3),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.uint8Array({ minLength: 1, maxLength: 64 }),
        (bar, where, bytes) => {
          const size = attacker.file.regionInfo(bar).size;
          const offset = Math.floor(where * (size - bytes.length));
          onlyVfioErrors(() => attacker.file.write(vfioPciIndexToOffset(bar) + offset, bytes));
        },
      ),
      { numRuns: 300 },
    );
    expect(Buffer.compare(victim.device.fb, pattern)).toBe(0);
  });
});
