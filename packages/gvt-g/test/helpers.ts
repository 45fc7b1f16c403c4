import {
  createFakeClock,
  createRecordingLogger,
  createTestHost,
  type FakeClock,
  type TestHost,
} from '@vfiokit/conformance';
import { VFIO_PCI_MSI_IRQ_INDEX } from '@vfiokit/core';
import { DeviceFile } from '@vfiokit/core/host';
import {
  createGvtParent,
  GTT_PAGE_SIZE,
  GVT_GTT_START_OFFSET,
  type GvtgVgpu,
  type GvtParent,
  MiB,
} from '../src/index.js';

export const UUID_A = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
export const UUID_B = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002';

export function newParent(apertureMiB = 512, clock: FakeClock = createFakeClock()): GvtParent {
  return createGvtParent({ clock, log: createRecordingLogger(), options: { apertureMiB } });
}

export interface OpenVgpu {
  readonly parent: GvtParent;
  readonly host: TestHost;
  readonly file: DeviceFile;
  readonly vgpu: GvtgVgpu;
  /** The MSI eventfd (SET_IRQS was done). */
  readonly msiFd: number;
  msiCount(): number;
  offset(index: number): number;
  read32(index: number, offset: number): number;
  write32(index: number, offset: number, value: number): void;
  reg(offset: number): number;
  setReg(offset: number, value: number): void;
  writePte(page: number, value: number): void;
  readPte(page: number): number;
  cfg32(offset: number): number;
  setCfg32(offset: number, value: number): void;
}

/** Enable memory decode and bus mastering and MSI in config space, and give MSI a trigger. */
export function openVgpu(parent: GvtParent, typeId: string, uuid = UUID_A, memorySize = 4 * MiB): OpenVgpu {
  const host = createTestHost({ memorySize, device: uuid });
  const vgpu = parent.create(typeId, uuid).device as GvtgVgpu;
  const file = new DeviceFile(vgpu, host);
  file.open();
  const offset = (index: number) => file.regionInfo(index).offset;
  const read32 = (index: number, off: number) => {
    const b = new Uint8Array(4);
    file.read(offset(index) + off, b);
    return new DataView(b.buffer).getUint32(0, true);
  };
  const write32 = (index: number, off: number, value: number) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    file.write(offset(index) + off, b);
  };
  write32(7, 0x04, 0x0006); // COMMAND: memory + bus master
  const msi = 0xac;
  write32(7, msi, read32(7, msi) | (1 << 16)); // MSI enable
  const msiFd = host.createEventfd();
  file.setIrqs({
    action: 'trigger',
    index: VFIO_PCI_MSI_IRQ_INDEX,
    start: 0,
    count: 1,
    data: 'eventfd',
    triggers: [host.resolveEventfd(msiFd)],
  });
  return {
    parent,
    host,
    file,
    vgpu,
    msiFd,
    msiCount: () => host.eventfd(msiFd)?.count ?? 0,
    offset,
    read32,
    write32,
    reg: (off) => read32(0, off),
    setReg: (off, v) => write32(0, off, v),
    writePte(page, value) {
      const b = new Uint8Array(8);
      const dv = new DataView(b.buffer);
      dv.setUint32(0, value % 2 ** 32, true);
      dv.setUint32(4, Math.floor(value / 2 ** 32), true);
      file.write(offset(0) + GVT_GTT_START_OFFSET + page * 8, b);
    },
    readPte(page) {
      const b = new Uint8Array(8);
      file.read(offset(0) + GVT_GTT_START_OFFSET + page * 8, b);
      const dv = new DataView(b.buffer);
      return dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
    },
    cfg32: (off) => read32(7, off),
    setCfg32: (off, v) => write32(7, off, v),
  };
}

/** Map `pages` GM pages from `gm` onto guest memory from `gpa`; returns nothing. */
export function mapGm(d: OpenVgpu, gm: number, gpa: number, pages: number): void {
  for (let p = 0; p < pages; p++) d.writePte(gm / GTT_PAGE_SIZE + p, gpa + p * GTT_PAGE_SIZE + 1);
}

/**
 * The first byte offset where `a` and `b` differ, -1 when equal (same length). For megabytes of
 * memory: expect().toEqual walks a typed array element by element, seconds per MiB.
 */
export function firstDifference(a: Uint8Array, b: Uint8Array): number {
  if (Buffer.compare(a, b) === 0) return -1;
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return n;
}
