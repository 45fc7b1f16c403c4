/**
 * @vfiokit/sample-mtty: the kernel's samples/vfio-mdev/mtty.c as a vfiokit plugin. One parent
 * device, `mtty`, with two mdev types drawing on one pool of 24 serial ports (mtty.c MAX_MTTYS):
 * `mtty-1` (one port) and `mtty-2` (two ports).
 */
import { definePlugin, MdevParent } from '@vfiokit/core';
import { mttyGuestDriver } from './guest-driver.js';
import { MttyDevice, type MttyPorts } from './mtty-device.js';

/** mtty.c MAX_MTTYS: ports shared by all instances of a parent. */
export const MTTY_MAX_PORTS = 24;

/** The `mtty` parent: available_instances = ports left / ports per instance, as mtty_get_available. */
export function createMttyParent(): MdevParent<MttyPorts> {
  return new MdevParent<MttyPorts>({
    name: 'mtty',
    driver: 'mtty',
    capacity: MTTY_MAX_PORTS,
    types: [
      { name: '1', prettyName: 'Single port serial', units: 1, data: 1 },
      { name: '2', prettyName: 'Dual port serial', units: 2, data: 2 },
    ],
    create: (type, uuid) => new MttyDevice(uuid, type.data ?? 1),
  });
}

export default definePlugin({
  name: '@vfiokit/sample-mtty',
  description:
    'A virtual WCH CH352 PCI serial card with one or two 16550 UARTs that loop back what they send.',
  probe: () => [createMttyParent()],
  guestDrivers: [mttyGuestDriver],
});

export { MTTY_TEST_LINE, mttyGuestDriver } from './guest-driver.js';

export type { MttyState } from './migration.js';
export { MTTY_HEADER_SIZE, MTTY_MAGIC, MTTY_MAJOR_VER, MTTY_MINOR_VER, MttyMigration } from './migration.js';
export type { MttyPorts } from './mtty-device.js';
export {
  MTTY_CLASS_CODE,
  MTTY_DEVICE_ID,
  MTTY_IO_BAR_SIZE,
  MTTY_REVISION,
  MTTY_VENDOR_ID,
  MttyDevice,
  mttyConfigSpace,
} from './mtty-device.js';
export * from './uart16550.js';
