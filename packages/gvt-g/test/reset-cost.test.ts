/**
 * A reset (QEMU waits 5 s for DEVICE_RESET) and a removal clear only what a vGPU used: a fresh
 * 512 MiB aperture slice is never read, so a memfd aperture stays unallocated.
 */
import { fstatSync } from 'node:fs';
import { createFakeClock, createRecordingLogger } from '@vfiokit/conformance';
import type { SharedMemory } from '@vfiokit/core';
import { allocateMemfdSharedMemory } from '@vfiokit/vfio-user';
import { describe, expect, it } from 'vitest';
import { createGvtParent, GTT_PAGE_SIZE, type GvtParent, MiB } from '../src/index.js';
import { newParent, openVgpu, UUID_A } from './helpers.js';

/** A parent whose memory is memfds, as under the vfio-user server. */
function memfdParent(): GvtParent {
  return createGvtParent(
    { clock: createFakeClock(), log: createRecordingLogger(), allocateMemory: allocateMemfdSharedMemory },
    { apertureMiB: 1024 },
  );
}

/** Bytes the kernel holds for a memfd (st_blocks counts 512-byte units). */
function allocated(memory: SharedMemory): number {
  if (memory.fd === undefined) throw new Error('the memory has no fd');
  return fstatSync(memory.fd).blocks * 512;
}

function readAperture(d: ReturnType<typeof openVgpu>, offset: number): number {
  return d.read32(2, offset);
}

describe('reset cost', () => {
  it('a reset of a fresh vGPU reads none of its 512 MiB slice (the memfd stays unallocated)', () => {
    const parent = memfdParent();
    const d = openVgpu(parent, 'i915-GVTg_V5_1');
    expect(d.vgpu.resources.low.size).toBe(512 * MiB);
    const aperture = d.vgpu.resources.aperture;
    expect(allocated(aperture)).toBe(0);
    d.file.reset();
    d.file.reset();
    expect(allocated(aperture)).toBe(0);
    d.file.close();
    parent.remove(UUID_A);
    expect(allocated(aperture)).toBe(0);
  });

  it('a reset zeroes what the guest wrote and gives a memfd its pages back', () => {
    const parent = memfdParent();
    const d = openVgpu(parent, 'i915-GVTg_V5_1');
    const { base } = d.vgpu.resources.low;
    d.write32(2, base + 0x10, 0x12345678); // trapped
    const map = d.file.mmap(d.offset(2) + base, 16 * GTT_PAGE_SIZE);
    map.memory.bytes[map.memoryOffset + 5 * GTT_PAGE_SIZE + 7] = 0xab; // direct, unseen
    expect(allocated(d.vgpu.resources.aperture)).toBe(2 * GTT_PAGE_SIZE);
    d.file.reset();
    expect(allocated(d.vgpu.resources.aperture)).toBe(0);
    d.setCfg32(0x04, 0x0006);
    expect(readAperture(d, base + 0x10)).toBe(0);
    expect(map.memory.bytes[map.memoryOffset + 5 * GTT_PAGE_SIZE + 7]).toBe(0);
  });

  it('without a memfd, a reset walks only pages written or mapped, and zeroes them', () => {
    const parent = newParent(512);
    const d = openVgpu(parent, 'i915-GVTg_V5_4');
    const { base, size } = d.vgpu.resources.low;
    const pages = d.vgpu.resources.aperturePages;
    d.file.reset();
    expect(pages.markedPages(base, base + size)).toBe(0);
    d.setCfg32(0x04, 0x0006);
    d.write32(2, base + 3 * GTT_PAGE_SIZE + 8, 0xdeadbeef);
    expect(pages.markedPages(base, base + size)).toBe(1);
    d.file.reset();
    d.setCfg32(0x04, 0x0006);
    expect(readAperture(d, base + 3 * GTT_PAGE_SIZE + 8)).toBe(0);
    expect(pages.markedPages(base, base + size)).toBe(0);

    // A mapping may be written behind the device's back: all of it is cleared, and stays marked.
    const map = d.file.mmap(d.offset(2) + base, size);
    map.memory.bytes[map.memoryOffset + size - 1] = 0x5a;
    d.file.reset();
    expect(map.memory.bytes[map.memoryOffset + size - 1]).toBe(0);
    expect(pages.markedPages(base, base + size)).toBe(size / GTT_PAGE_SIZE);

    // Removal: the next vGPU gets a clean slice and nothing left marked.
    map.memory.bytes[map.memoryOffset + 9] = 1;
    d.file.close();
    parent.remove(UUID_A);
    expect(pages.markedPages(base, base + size)).toBe(0);
    expect(d.vgpu.resources.aperture.bytes[base + 9]).toBe(0);
  });
});
