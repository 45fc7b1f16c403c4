import { createTestHost } from '@vfiokit/conformance';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import { vfioPciIndexToOffset } from '@vfiokit/core/abi';
import { DeviceFile } from '@vfiokit/core/host';
import { buildVbt, type IgdHostFacts, IgdPassthroughDevice } from '../src/index.js';

export function openIgd(facts: IgdHostFacts) {
  const device = new IgdPassthroughDevice(facts);
  const file = new DeviceFile(device, createTestHost({ device: device.name }));
  file.open();
  const readRegion = (index: number, offset: number, length: number) => {
    const b = new Uint8Array(length);
    file.read(vfioPciIndexToOffset(index) + offset, b);
    return b;
  };
  const cfgRead = (offset: number, size: 1 | 2 | 4) => {
    const b = readRegion(VFIO_PCI_CONFIG_REGION_INDEX, offset, size);
    let v = 0;
    for (let i = size - 1; i >= 0; i--) v = v * 256 + b[i];
    return v;
  };
  const cfgWrite = (offset: number, size: 1 | 2 | 4, value: number) => {
    const b = new Uint8Array(size);
    for (let i = 0; i < size; i++) b[i] = (value >>> (8 * i)) & 0xff;
    file.write(vfioPciIndexToOffset(VFIO_PCI_CONFIG_REGION_INDEX) + offset, b);
  };
  return { device, file, readRegion, cfgRead, cfgWrite };
}

/** A VBT larger than mailbox 4's 6 KiB, so an OpRegion must carry it through RVDA/RVDS. */
export function largeVbt(): Uint8Array {
  const filler = new Uint8Array(7000).map((_, i) => (i * 7 + 3) & 0xff);
  return buildVbt(
    [
      { id: 40, data: new Uint8Array([5, 0, 0, 0]) },
      { id: 200, data: filler },
    ],
    { platform: 'TIGERLAKE', bdbVersion: 240 },
  );
}

export function le32(b: Uint8Array, off: number, v: number): void {
  for (let i = 0; i < 4; i++) b[off + i] = (v >>> (8 * i)) & 0xff;
}
