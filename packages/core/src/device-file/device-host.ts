/**
 * What the host gives an open device file (DMA, dirty log, clock, log, eventfds, DMA logging),
 * and what the ioctl decoders see of the file they answer for.
 */

import type { Clock, DirtyLog, DmaSpace, Logger } from '../contract/context.js';
import type { DeviceInfo, IrqInfo, VfioDevice } from '../contract/device.js';
import type { MigrationController } from '../migration/controller.js';
import { noMigrationError } from './access-errors.js';
import type { DeviceFile } from './device-file.js';
import type { IrqTrigger } from './irq-state.js';

/** VFIO_DEVICE_FEATURE_DMA_LOGGING_*: the host's dirty tracker for this device's DMA. */
export interface DmaLogging {
  start(pageSize: number, ranges: readonly { iova: number; length: number }[]): void;
  stop(): void;
  report(iova: number, length: number, pageSize: number): Uint8Array;
}

/** What the host gives a DeviceFile: the services an open device may use. */
export interface DeviceHost {
  readonly dma: DmaSpace;
  readonly dirty: DirtyLog;
  readonly clock: Clock;
  readonly log: Logger;
  /** Turn an eventfd number from SET_IRQS into a trigger; throw VfioError EBADF for an unknown fd. */
  resolveEventfd?(fd: number): IrqTrigger;
  readonly dmaLogging?: DmaLogging;
}

/**
 * A device file as its ioctl decoders see it: the typed operations they end in, and the facts
 * (device info, IRQ table, host services) they check arguments against. Made once per file.
 */
export interface IoctlScope {
  readonly name: string;
  readonly file: DeviceFile;
  readonly device: VfioDevice;
  readonly host: DeviceHost;
  readonly info: DeviceInfo;
  readonly irqInfos: readonly (IrqInfo | undefined)[];
  readonly migration: MigrationController | undefined;
}

/** The migration controller of a device that migrates; ENOTTY for one that does not. */
export function needMigration(scope: {
  readonly name: string;
  readonly migration: MigrationController | undefined;
}): MigrationController {
  if (!scope.migration) throw noMigrationError(scope.name);
  return scope.migration;
}
