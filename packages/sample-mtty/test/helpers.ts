import { createTestHost, type TestHost } from '@vfiokit/conformance';
import { VFIO_PCI_CONFIG_REGION_INDEX, type VfioPlugin } from '@vfiokit/core';
import { vfioPciIndexToOffset } from '@vfiokit/core/abi';
import { DeviceFile } from '@vfiokit/core/host';
import plugin from '../src/index.js';
import type { MttyDevice } from '../src/mtty-device.js';

export const UUID_A = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
export const UUID_B = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1002';

/** The mtty parent of a fresh probe: each probe has its own pool of 24 ports. */
export function probeParent(p: VfioPlugin = plugin) {
  const host = createTestHost();
  const [parent] = p.probe({ clock: host.clock, log: host.log, options: {} });
  return parent;
}

export interface OpenDevice {
  readonly host: TestHost;
  readonly file: DeviceFile;
  readonly device: MttyDevice;
  cfgRead32(offset: number): number;
  cfgWrite32(offset: number, value: number): void;
  barRead(bar: number, offset: number): number;
  barWrite(bar: number, offset: number, value: number): void;
}

/** Create an instance of `typeId` and open it through the core's DeviceFile on a test host. */
export function openMtty(typeId: 'mtty-1' | 'mtty-2', uuid = UUID_A): OpenDevice {
  const parent = probeParent();
  const host = createTestHost();
  const device = parent.create(typeId, uuid).device as MttyDevice;
  const file = new DeviceFile(device, host);
  file.open();
  const cfg = vfioPciIndexToOffset(VFIO_PCI_CONFIG_REGION_INDEX);
  return {
    host,
    file,
    device,
    cfgRead32(offset) {
      const b = new Uint8Array(4);
      file.read(cfg + offset, b);
      return new DataView(b.buffer).getUint32(0, true);
    },
    cfgWrite32(offset, value) {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, value >>> 0, true);
      file.write(cfg + offset, b);
    },
    barRead(bar, offset) {
      const b = new Uint8Array(1);
      file.read(vfioPciIndexToOffset(bar) + offset, b);
      return b[0];
    },
    barWrite(bar, offset, value) {
      file.write(vfioPciIndexToOffset(bar) + offset, Uint8Array.of(value));
    },
  };
}
