/**
 * The device both machine benches attach: BAR 0 is 64 KiB of memory (mapped directly), BAR 2 a
 * page of trapped registers, a RegisterBank given as the BAR's handler (`bank`, its value road)
 * or behind a read()/write() handler (`bytes`, as a plugin without the value road answers).
 */
import {
  allocateSharedMemory,
  ConfigSpace,
  msixCapability,
  PciDeviceModel,
  RegisterBank,
} from '@vfiokit/core';

export function benchDevice(
  name: string,
  withMsix: boolean,
  bar2: 'bank' | 'bytes' = 'bytes',
): PciDeviceModel {
  const config = new ConfigSpace({
    name,
    identity: {
      vendorId: 0x1af4,
      deviceId: 0x10f0,
      subsystemVendorId: 0x1af4,
      subsystemId: 1,
      classCode: 0xff0000,
      revision: 1,
      interruptPin: 1,
    },
  });
  config.defineBar({ index: 0, kind: 'mem32', size: 0x1_0000 });
  config.defineBar({ index: 2, kind: 'mem32', size: 0x1000 });
  if (withMsix)
    config.addCapability(
      msixCapability({ tableSize: 2, tableBar: 2, tableOffset: 0, pbaBar: 2, pbaOffset: 0x800 }),
    );
  const bank = new RegisterBank({
    name: `${name}-bar2`,
    size: 0x1000,
    registers: Array.from({ length: 64 }, (_, i) => ({
      name: `r${i}`,
      offset: 0x100 + i * 4,
      reset: 0x1000 + i,
    })),
  });
  return new PciDeviceModel({
    name,
    config,
    bars: {
      0: { memory: allocateSharedMemory(0x1_0000) },
      2: {
        handler:
          bar2 === 'bank' ? bank : { read: (o, d) => bank.read(o, d), write: (o, s) => bank.write(o, s) },
      },
    },
  });
}
