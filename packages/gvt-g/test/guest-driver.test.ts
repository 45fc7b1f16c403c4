import { createFakeClock } from '@vfiokit/conformance';
import type { GuestView, ProbedDevice } from '@vfiokit/core';
import { describe, expect, it } from 'vitest';
import {
  buildVirtualOpRegion,
  DRM_FORMAT_XRGB8888,
  GUEST_BLIT,
  GUEST_FB_HEIGHT,
  GUEST_FB_STRIDE,
  GUEST_FB_WIDTH,
  guestPattern,
  gvtgGuestDriver,
  MiB,
} from '../src/index.js';
import { newParent, type OpenVgpu, openVgpu } from './helpers.js';

const BAR0_GPA = 0xe000_0000;
const BAR2_GPA = 0x8000_0000;
const VECTOR = 0x31;
const address = { bus: 0, device: 2, function: 0 };

/** A guest as the reference VMM gives one: BARs placed, the aperture slice mapped directly, the rest trapped. */
function fakeGuest(d: OpenVgpu, advance: (ns: number) => void): { guest: GuestView; probed: ProbedDevice } {
  d.setCfg32(0x10, BAR0_GPA | 4);
  d.setCfg32(0x14, 0);
  d.setCfg32(0x18, BAR2_GPA | 0xc);
  d.setCfg32(0x1c, 0);
  const slice = d.vgpu.resources.low;
  const direct = d.file.mmap(d.offset(2) + slice.base, slice.size);
  const directView = new DataView(
    direct.memory.bytes.buffer,
    direct.memory.bytes.byteOffset + direct.memoryOffset,
    slice.size,
  );
  let next = 2 * MiB;
  const access = (gpa: number, size: 1 | 2 | 4, write: boolean, value = 0): number => {
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    let region = -1;
    let off = 0;
    if (gpa >= BAR0_GPA && gpa < BAR0_GPA + 16 * MiB) [region, off] = [0, gpa - BAR0_GPA];
    else if (gpa >= BAR2_GPA && gpa < BAR2_GPA + 512 * MiB) [region, off] = [2, gpa - BAR2_GPA];
    if (region < 0) return 0xffffffff;
    if (region === 2 && off >= slice.base && off + size <= slice.base + slice.size && size === 4) {
      if (write) directView.setUint32(off - slice.base, value >>> 0, true);
      return directView.getUint32(off - slice.base, true);
    }
    if (write) {
      if (size === 4) dv.setUint32(0, value >>> 0, true);
      else if (size === 2) dv.setUint16(0, value, true);
      else b[0] = value;
      d.file.write(d.offset(region) + off, b);
      return 0;
    }
    d.file.read(d.offset(region) + off, b);
    return size === 4 ? dv.getUint32(0, true) : size === 2 ? dv.getUint16(0, true) : b[0];
  };
  const cfg = (off: number, size: 1 | 2 | 4, write: boolean, value = 0) => {
    const b = new Uint8Array(size);
    const dv = new DataView(b.buffer);
    if (write) {
      for (let i = 0; i < size; i++) b[i] = (value >>> (8 * i)) & 0xff;
      d.file.write(d.offset(7) + off, b);
      return 0;
    }
    d.file.read(d.offset(7) + off, b);
    return size === 4 ? dv.getUint32(0, true) : size === 2 ? dv.getUint16(0, true) : b[0];
  };
  const guest: GuestView = {
    configRead: (_a, off, size) => cfg(off, size, false),
    configWrite: (_a, off, size, v) => {
      cfg(off, size, true, v);
    },
    mmioRead: (gpa, size) => access(gpa, size, false),
    mmioWrite: (gpa, size, v) => {
      access(gpa, size, true, v);
    },
    // The driver makes no 8-byte accesses.
    mmioRead64: () => 0xffff_ffff_ffff_ffffn,
    mmioWrite64: () => {},
    ioRead: () => 0xffffffff,
    ioWrite: () => {},
    ram: {
      size: d.host.memory.size,
      read: (gpa, dst) => dst.set(d.host.memory.bytes.subarray(gpa, gpa + dst.length)),
      write: (gpa, src) => d.host.memory.bytes.set(src, gpa),
      alloc: (size) => {
        const at = next;
        next += Math.ceil(size / 4096) * 4096;
        return at;
      },
    },
    interrupts: {
      allocateVector: () => ({ vector: VECTOR, address: 0xfee00000, data: VECTOR }),
      intxVector: () => 0,
      count: () => d.msiCount(),
      eoi: () => {},
      waitFor: async (_v, count, timeoutMs) => {
        for (let t = 0; t < timeoutMs && d.msiCount() < count; t++) advance(1_000_000);
        return d.msiCount() >= count;
      },
    },
    devices: () => [probed],
    log: () => {},
  };
  const probed: ProbedDevice = {
    address,
    vendorId: 0x8086,
    deviceId: 0x5912,
    subsystemVendorId: 0x8086,
    subsystemId: 0x2212,
    classCode: 0x030000,
    revision: 4,
    interruptPin: 1,
    bars: [
      { index: 0, kind: 'mem64', prefetchable: false, size: 16 * MiB, address: BAR0_GPA },
      { index: 2, kind: 'mem64', prefetchable: true, size: 512 * MiB, address: BAR2_GPA },
    ],
    capabilities: [],
    interrupts: { kind: 'msi', vectors: [VECTOR] },
  };
  return { guest, probed };
}

describe('the i915-like guest driver', () => {
  it('binds to the vGPU, balloons, draws, blits through a batch, takes the interrupt and checks everything', async () => {
    const clock = createFakeClock();
    const d = openVgpu(newParent(512, clock), 'i915-GVTg_V5_8', undefined, 8 * MiB);
    const opregionGpa = 0x700000;
    d.host.memory.bytes.set(buildVirtualOpRegion(), opregionGpa);
    d.setCfg32(0xfc, opregionGpa);
    const { guest, probed } = fakeGuest(d, (ns) => clock.advance(ns));
    expect(gvtgGuestDriver.matches(probed)).toBe(true);
    const result = await gvtgGuestDriver.run(guest, probed);
    expect(result.summary).toMatch(/PVINFO found/);
    expect(result.ok).toBe(true);
    expect(result.facts).toMatchObject({
      vgtId: 1,
      fences: 4,
      interrupt: 'msi',
      opregion: 'IntelGraphicsMem',
    });

    // What the VMM's display sees: the guest's frame with the blitted rectangle.
    const plane = d.vgpu.display!.queryPlane('region', 1);
    expect(plane).toMatchObject({
      width: GUEST_FB_WIDTH,
      height: GUEST_FB_HEIGHT,
      drmFormat: DRM_FORMAT_XRGB8888,
    });
    const frame = new DataView(d.vgpu.screen.frame.bytes.buffer);
    expect(frame.getUint32(GUEST_BLIT.y1 * GUEST_FB_STRIDE + GUEST_BLIT.x1 * 4, true)).toBe(GUEST_BLIT.color);
    expect(frame.getUint32(2 * GUEST_FB_STRIDE + 3 * 4, true)).toBe(guestPattern(3, 2));
  });

  it('does not bind to a device without the GVT-g BARs', () => {
    expect(
      gvtgGuestDriver.matches({
        address,
        vendorId: 0x8086,
        deviceId: 0x5912,
        subsystemVendorId: 0,
        subsystemId: 0,
        classCode: 0x030000,
        revision: 0,
        interruptPin: 0,
        bars: [],
        capabilities: [],
        interrupts: { kind: 'none', vectors: [] },
      }),
    ).toBe(false);
  });

  it('declines a GPU whose PVINFO has no vGT magic (a native IGD), as i915_detect_vgpu does', async () => {
    const clock = createFakeClock();
    const d = openVgpu(newParent(512, clock), 'i915-GVTg_V5_8');
    const { guest, probed } = fakeGuest(d, (ns) => clock.advance(ns));
    const native = { ...guest, mmioRead: () => 0 };
    const result = await gvtgGuestDriver.run(native, probed);
    expect(result.summary).toMatch(/not a GVT-g vGPU: no vGT magic/);
    expect(result.facts).toEqual({ vgpu: false });
  });

  it('reports a vGPU it did drive with vgpu: true in its facts', async () => {
    const clock = createFakeClock();
    const d = openVgpu(newParent(512, clock), 'i915-GVTg_V5_8');
    const { guest, probed } = fakeGuest(d, (ns) => clock.advance(ns));
    const result = await gvtgGuestDriver.run(guest, probed);
    expect(result.ok).toBe(true);
    expect(result.facts?.vgpu).toBe(true);
  });
});
