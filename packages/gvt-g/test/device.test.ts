import {
  VFIO_PCI_ERR_IRQ_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VFIO_PCI_MSIX_IRQ_INDEX,
  VFIO_PCI_REQ_IRQ_INDEX,
  VfioError,
} from '@vfiokit/core';
import {
  decodeRegionInfo,
  encodeRegionInfoStruct,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_REGION_INFO_CAP_SPARSE_MMAP,
  VFIO_REGION_INFO_CAP_TYPE,
} from '@vfiokit/core/abi';
import { describe, expect, it } from 'vitest';
import {
  buildVirtualOpRegion,
  emulateSwsci,
  FENCE_REG_GEN6_BASE,
  GTT_PAGE_SIZE,
  MiB,
  OPREGION_SIGNATURE,
  PCI_ASLS,
  PCI_SWSCI,
  PVINFO,
  SWSCI_SCI_SELECT,
  SWSCI_SCI_TRIGGER,
  VGT_PVINFO_PAGE,
} from '../src/index.js';
import { newParent, openVgpu } from './helpers.js';

function fullRegionInfo(file: import('@vfiokit/core/host').DeviceFile, index: number) {
  const arg = new Uint8Array(256);
  encodeRegionInfoStruct({ argsz: 256, flags: 0, index, capOffset: 0, size: 0, offset: 0 }, arg);
  const r = file.ioctl(VFIO_DEVICE_GET_REGION_INFO, arg);
  expect(r.ret).toBe(0);
  return decodeRegionInfo(r.out);
}

describe('the vGPU device, region for region', () => {
  it('reports PCI | RESET with 13 regions and 5 IRQ indexes', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_4');
    expect(d.file.deviceInfo()).toEqual({ reset: true, numRegions: 13, numIrqs: 5 });
  });

  it('has a 16 MiB trapped BAR0, no BAR1, and the whole aperture as BAR2 with one sparse area: its slice', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_4');
    const bar0 = fullRegionInfo(d.file, 0);
    expect(bar0.size).toBe(16 * MiB);
    expect(bar0.flags & 4).toBe(0);
    expect(fullRegionInfo(d.file, 1).size).toBe(0);
    const bar2 = fullRegionInfo(d.file, 2);
    expect(bar2.size).toBe(512 * MiB);
    const sparse = bar2.caps.find((c) => c.id === VFIO_REGION_INFO_CAP_SPARSE_MMAP);
    expect(sparse && 'areas' in sparse ? sparse.areas : undefined).toEqual([
      { offset: d.vgpu.resources.low.base, size: 128 * MiB },
    ]);
    for (const i of [3, 4, 5, 8]) expect(fullRegionInfo(d.file, i).size).toBe(0);
    // The expansion ROM: the video BIOS image that carries the VBT.
    expect(fullRegionInfo(d.file, 6).size).toBe(2048);
  });

  it('maps its aperture slice directly: mmap bytes and trapped accesses are the same memory', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const { base, size } = d.vgpu.resources.low;
    const m = d.file.mmap(d.offset(2) + base, size);
    m.memory.bytes[m.memoryOffset + 100] = 0x5a;
    expect(d.read32(2, base + 100) & 0xff).toBe(0x5a);
    expect(() => d.file.mmap(d.offset(2), GTT_PAGE_SIZE)).toThrow(VfioError);
  });

  it('refuses trapped aperture accesses outside its slice with EINVAL', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    expect(() => d.read32(2, 0)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    const end = d.vgpu.resources.low.base + d.vgpu.resources.low.size;
    expect(() => d.write32(2, end, 1)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
  });

  it('exposes the OpRegion read-only as IGD_OPREGION and the EDID region as GFX_EDID', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const op = fullRegionInfo(d.file, 9);
    expect(op.size).toBe(8192);
    expect(op.flags & 3).toBe(1);
    expect(op.caps).toContainEqual(
      expect.objectContaining({ id: VFIO_REGION_INFO_CAP_TYPE, type: 0x80008086, subtype: 1 }),
    );
    const edid = fullRegionInfo(d.file, 10);
    expect(edid.caps).toContainEqual(
      expect.objectContaining({ id: VFIO_REGION_INFO_CAP_TYPE, type: 1, subtype: 1 }),
    );
    const sig = new Uint8Array(16);
    d.file.read(d.offset(9), sig);
    expect(new TextDecoder().decode(sig)).toBe(OPREGION_SIGNATURE);
    expect(() => d.write32(9, 0, 0)).toThrow(VfioError);
  });

  it('has INTx maskable+automasked and MSI NORESIZE with one vector; MSI-X, ERR and REQ are EINVAL', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    expect(d.file.irqInfo(VFIO_PCI_INTX_IRQ_INDEX)).toMatchObject({
      count: 1,
      maskable: true,
      automasked: true,
    });
    expect(d.file.irqInfo(VFIO_PCI_MSI_IRQ_INDEX)).toMatchObject({
      count: 1,
      noresize: true,
      maskable: false,
    });
    for (const i of [VFIO_PCI_MSIX_IRQ_INDEX, VFIO_PCI_ERR_IRQ_INDEX, VFIO_PCI_REQ_IRQ_INDEX]) {
      expect(() => d.file.irqInfo(i)).toThrow(expect.objectContaining({ code: 'EINVAL' }));
    }
  });

  it('seeds config space from the host IGD: Intel 0x5912, VGA class, GMCH stolen size cleared', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    expect(d.cfg32(0)).toBe(0x59128086);
    expect(d.cfg32(8) >>> 8).toBe(0x030000);
    const ggc = d.cfg32(0x50) & 0xffff;
    expect(ggc & 0xff00).toBe(0);
    expect(ggc & 0xc0).toBe(0xc0);
    d.setCfg32(0x10, 0xffffffff);
    expect((d.cfg32(0x10) & ~0xf) >>> 0).toBe(0x100000000 - 16 * MiB);
    d.setCfg32(0x18, 0xffffffff);
    d.setCfg32(0x1c, 0xffffffff);
    expect((d.cfg32(0x18) & ~0xf) >>> 0).toBe(0x100000000 - 512 * MiB);
  });
});

describe('PVINFO', () => {
  it('is laid out as i915_pvinfo.h says, with the vGPU id, its ranges and fences', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_4');
    const pv = (o: number) => d.reg(VGT_PVINFO_PAGE + o);
    expect(pv(PVINFO.magic)).toBe(0x76544776);
    expect(pv(PVINFO.magic + 4)).toBe(0x47765447);
    expect(pv(PVINFO.versionMajor) & 0xffff).toBe(1);
    expect(pv(PVINFO.versionMajor) >>> 16).toBe(0);
    expect(pv(PVINFO.vgtId)).toBe(d.vgpu.vgpuId);
    expect(pv(PVINFO.vgtCaps)).toBe((1 << 2) | (1 << 3) | (1 << 4));
    expect(pv(PVINFO.mappableBase)).toBe(d.vgpu.resources.low.base);
    expect(pv(PVINFO.mappableSize)).toBe(128 * MiB);
    expect(pv(PVINFO.nonmappableBase)).toBe(d.vgpu.resources.high.base);
    expect(pv(PVINFO.nonmappableSize)).toBe(512 * MiB);
    expect(pv(PVINFO.fenceNum)).toBe(4);
    expect(pv(PVINFO.cursorXHot)).toBe(0xffffffff);
  });

  it('keeps its read-only fields when the guest writes them', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    d.setReg(VGT_PVINFO_PAGE + PVINFO.mappableBase, 0);
    d.setReg(VGT_PVINFO_PAGE + PVINFO.magic, 0);
    expect(d.reg(VGT_PVINFO_PAGE + PVINFO.mappableBase)).toBe(d.vgpu.resources.low.base);
    expect(d.reg(VGT_PVINFO_PAGE + PVINFO.magic)).toBe(0x76544776);
  });

  it('records PPGTT roots on g2v create and forgets them on destroy', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    d.setReg(VGT_PVINFO_PAGE + PVINFO.pdp, 0x12345000);
    d.setReg(VGT_PVINFO_PAGE + PVINFO.g2vNotify, 4);
    expect([...d.vgpu.ppgttRoots]).toEqual([0x12345000]);
    d.setReg(VGT_PVINFO_PAGE + PVINFO.g2vNotify, 5);
    expect(d.vgpu.ppgttRoots.size).toBe(0);
    d.setReg(VGT_PVINFO_PAGE + PVINFO.g2vNotify, 99);
    expect(d.host.log.entries.some((e) => e.message.includes('g2v_notify 99'))).toBe(true);
  });

  it('shadows the guest fence registers into the host fences it owns', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    d.setReg(FENCE_REG_GEN6_BASE + 8, 0xabc001);
    const hostFence = d.vgpu.resources.fences[1];
    expect(d.parent.gpu.fenceRegs[hostFence]).toBe(0xabc001);
  });
});

describe('OpRegion and SWSCI', () => {
  it('is 8 KiB, version 2.0, VBT mailbox only, lid open, with a $VBT of four DP children at 0x400', () => {
    const op = buildVirtualOpRegion();
    const dv = new DataView(op.buffer);
    expect(dv.getUint32(0x10, true)).toBe(8);
    expect(dv.getUint32(0x14, true)).toBe(0x02000000);
    expect(dv.getUint32(0x58, true)).toBe(1 << 3);
    expect(op[0x1ac]).toBe(3);
    expect(new TextDecoder().decode(op.subarray(0x400, 0x404))).toBe('$VBT');
    expect(dv.getUint16(0x400 + 0x14, true)).toBe(155);
    const vbtSize = dv.getUint16(0x400 + 0x18, true);
    const bdb = 0x400 + 48;
    expect(new TextDecoder().decode(op.subarray(bdb, bdb + 15))).toBe('BIOS_DATA_BLOCK');
    expect(dv.getUint16(bdb + 0x10, true)).toBe(186);
    expect(dv.getUint16(bdb + 0x14, true)).toBe(vbtSize - 48);
    // walk the blocks: 1, 2 (4 children of 33 bytes, device type DP), 12
    const ids: number[] = [];
    for (let at = bdb + 22; at < 0x400 + vbtSize; ) {
      ids.push(op[at]);
      const size = dv.getUint16(at + 1, true);
      if (op[at] === 2) {
        expect(op[at + 3 + 4]).toBe(33);
        expect((size - 5) / 33).toBe(4);
        for (let c = 0; c < 4; c++) expect(dv.getUint16(at + 3 + 5 + c * 33 + 2, true)).toBe(0x68c6);
      }
      at += 3 + size;
    }
    expect(ids).toEqual([1, 2, 12]);
  });

  it('answers capability queries with 0 and refuses runtime services with exit status 0', () => {
    expect(emulateSwsci((4 << 1) | 1, 7)).toEqual({ scic: 0, parm: 0, answered: true });
    const r = emulateSwsci((5 << 1) | (3 << 5) | (2 << 8) | 1, 7);
    expect(r.answered).toBe(false);
    expect(r.scic & 0xe0).toBe(0);
    expect(r.parm).toBe(7);
  });

  it('records ASLS and emulates a SWSCI request in the guest copy of the OpRegion on a 0->1 trigger', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const asls = 0x100000;
    d.host.memory.bytes.set(buildVirtualOpRegion(), asls);
    new DataView(d.host.memory.bytes.buffer).setUint32(asls + 0x200, (4 << 1) | 1, true);
    d.setCfg32(PCI_ASLS, asls);
    expect(d.vgpu.asls).toBe(asls);
    d.setCfg32(PCI_SWSCI, SWSCI_SCI_SELECT | SWSCI_SCI_TRIGGER);
    expect(new DataView(d.host.memory.bytes.buffer).getUint32(asls + 0x200, true)).toBe(0);
    expect(d.vgpu.stats.swsciRequests).toBe(1);
    d.setCfg32(PCI_SWSCI, SWSCI_SCI_SELECT | SWSCI_SCI_TRIGGER);
    expect(d.vgpu.stats.swsciRequests).toBe(1);
  });
});

describe('reset', () => {
  it('restores registers, GGTT, EDID, ASLS and PPGTT state to creation', () => {
    const d = openVgpu(newParent(512), 'i915-GVTg_V5_8');
    const page = d.vgpu.resources.low.base / GTT_PAGE_SIZE;
    d.writePte(page, 0x1000 + 1);
    d.setReg(0x70180, 0x84000000);
    d.setReg(VGT_PVINFO_PAGE + PVINFO.displayReady, 1);
    d.setCfg32(PCI_ASLS, 0x100000);
    d.setReg(VGT_PVINFO_PAGE + PVINFO.g2vNotify, 4);
    d.file.reset();
    d.setCfg32(0x04, 0x0006);
    expect(d.readPte(page)).toBe(0);
    expect(d.parent.gpu.ggtt.pte[page]).toBe(0);
    expect(d.vgpu.ggtt.pinnedFrames).toBe(0);
    expect(d.reg(0x70180)).toBe(0);
    expect(d.reg(VGT_PVINFO_PAGE + PVINFO.displayReady)).toBe(0);
    expect(d.reg(VGT_PVINFO_PAGE + PVINFO.magic)).toBe(0x76544776);
    expect(d.vgpu.asls).toBe(0);
    expect(d.cfg32(PCI_ASLS)).toBe(0);
    expect(d.vgpu.ppgttRoots.size).toBe(0);
  });
});
