import { afterEach, describe, expect, it } from 'vitest';
import type { Booted } from '../src/cli/boot.js';
import { bufferIo } from '../src/cli/io.js';
import { main } from '../src/cli/main.js';
import { bootConfig, NVIDIA_CONFIG, runDrivers } from './gpu-helpers.js';

let booted: Booted | undefined;
afterEach(() => {
  booted?.shutdown();
  booted = undefined;
});

describe('@vfiokit/nvidia-vgpu on the reference machine', () => {
  it('boots a T4-4C vGPU by package name and its guest driver passes with an MSI completion', async () => {
    booted = await bootConfig(NVIDIA_CONFIG);
    const runs = await runDrivers(booted);
    expect(runs).toHaveLength(1);
    expect(runs[0].ok, runs[0].summary).toBe(true);
    expect(runs[0].driver).toBe('nvidia-vgpu-guest');
    expect(runs[0].facts).toMatchObject({
      irq: 'msi',
      hostVersion: '0x10000',
      channel: 0,
      interruptDelivered: true,
    });
  });

  it('maps BAR1 (the framebuffer, 64-bit above 4 GiB) and the BAR0 mailbox directly and traps the registers', async () => {
    booted = await bootConfig(NVIDIA_CONFIG);
    await runDrivers(booted);
    const dev = booted.machine.report().devices.find((d) => d.slot === '0000:00:05.0');
    expect(dev?.vendorId).toBe(0x10de);
    const bar0 = dev?.regions.find((r) => r.name === 'BAR0');
    const bar1 = dev?.regions.find((r) => r.name === 'BAR1');
    expect(bar1).toMatchObject({ barKind: 'mem64', prefetchable: true, mapping: 'direct', size: 1 << 20 });
    expect(bar1?.guestAddress ?? 0).toBeGreaterThanOrEqual(2 ** 32);
    expect(bar0?.mapping).toBe('mixed');
    const mailbox = bar0?.parts.find((p) => p.how === 'direct');
    expect(mailbox).toMatchObject({ offset: 0x1000, size: 0x1000 });
    expect(mailbox?.writes).toBeGreaterThan(0);
    expect(dev?.interrupts.mode).toBe('msi');
    expect(booted.machine.report().errors).toEqual([]);
  });

  it('vfiokit run passes every guest driver of the default configuration: mtty, gvt-g and nvidia-vgpu', async () => {
    const io = bufferIo();
    const code = await main(['run', '--json'], io);
    expect(io.err()).toBe('');
    expect(code).toBe(0);
    const j = JSON.parse(io.out()) as { drivers: { slot: string; driver: string; ok: boolean }[] };
    expect(j.drivers.map((d) => [d.slot, d.ok])).toEqual(
      expect.arrayContaining([
        ['00:03.0', true],
        ['00:04.0', true],
        ['00:05.0', true],
      ]),
    );
    expect(j.drivers.every((d) => d.ok)).toBe(true);
  });
});
