/**
 * The words of a refused device-file request: what was wrong, where (device, region, offset)
 * and what to do. The checks themselves live with the operations (device-file.ts and the ioctl
 * decoders); these functions only build the VfioError each check throws.
 */

import { VfioError } from '../errors.js';
import type { ResolvedRegion } from './region-table.js';

export type AccessKind = 'read' | 'write';

const KEEP_INSIDE =
  'Use the offset and size that REGION_INFO reports for the region, and keep the access inside it.';

export function notOpenError(device: string, what: AccessKind): VfioError {
  return new VfioError('EBADF', `${what} on a device that is not open.`, {
    device,
    hint: 'Open the device first.',
  });
}

/** A migration operation on a device file that is not open (the state belongs to the device). */
export function closedMigrationError(device: string, what: string): VfioError {
  return new VfioError('EBADF', `${what} on a device file that is not open.`, {
    device,
    hint: 'Open the device file first; the device keeps its migration state while no file is open.',
  });
}

export function alreadyOpenError(device: string): VfioError {
  return new VfioError('EBUSY', 'the device is already open.', {
    device,
    hint: 'A device file is opened once; close it before opening it again.',
  });
}

/**
 * A refused region-relative access, for a device that is open. `r` is the region at `index`
 * (undefined, or of size 0, when the device does not implement it); `regionCount` is the
 * device's number of region indexes.
 */
export function regionAccessError(
  device: string,
  what: AccessKind,
  index: number,
  offset: number,
  n: number,
  r: ResolvedRegion | undefined,
  regionCount: number,
): VfioError {
  if (!r) {
    return new VfioError(
      'EINVAL',
      `${what} of ${n} bytes in region ${index}, which the device does not implement (it has ${regionCount} region indexes).`,
      { device, hint: 'Use a region whose REGION_INFO reports a size.' },
    );
  }
  if (!Number.isSafeInteger(offset) || offset < 0) {
    return new VfioError('EINVAL', `${what} at offset ${offset} of region ${index} is not a valid offset.`, {
      device,
      region: index,
    });
  }
  if (n === 0) {
    return new VfioError('EINVAL', `${what} of 0 bytes.`, { device, hint: 'Access at least one byte.' });
  }
  if (what === 'read' ? !r.read : !r.write) {
    return new VfioError(
      'EINVAL',
      `region ${r.index} is ${r.read ? 'read-only' : 'write-only'}, so a ${what} is refused.`,
      {
        device,
        region: r.index,
        offset,
        hint: 'Check the READ and WRITE flags that REGION_INFO reports.',
      },
    );
  }
  return new VfioError('EINVAL', `${what} of ${n} bytes runs past the end of the ${r.size}-byte region.`, {
    device,
    region: r.index,
    offset,
    hint: KEEP_INSIDE,
  });
}

/** A file offset in no region, for a device that is open. */
export function fileAccessError(device: string, what: AccessKind, offset: number, n: number): VfioError {
  if (!Number.isSafeInteger(offset) || offset < 0) {
    return new VfioError('EINVAL', `${what} at file offset ${offset} is not a valid offset.`, { device });
  }
  return new VfioError(
    'EINVAL',
    `${what} of ${n} bytes at file offset 0x${offset.toString(16)} is in no region.`,
    { device, hint: KEEP_INSIDE },
  );
}

export function noRegionError(device: string, index: number, regionCount: number): VfioError {
  return new VfioError(
    'EINVAL',
    `there is no region ${index}; the device has ${regionCount} region indexes.`,
    { device, region: index, hint: 'Ask DEVICE_GET_INFO for num_regions.' },
  );
}

export function noIrqError(device: string, index: number, irqCount: number): VfioError {
  return new VfioError('EINVAL', `there is no IRQ index ${index}; the device has ${irqCount} IRQ indexes.`, {
    device,
    irq: index,
    hint: 'Ask DEVICE_GET_INFO for num_irqs, then GET_IRQ_INFO for each index below it.',
  });
}

/** Where an mmap request points, for its error. */
export function mmapPlace(
  device: string,
  r: ResolvedRegion | undefined,
  offset: number,
): { device: string; region: number | undefined; offset: number } {
  return { device, region: r?.index, offset: r ? offset - r.offset : offset };
}

export function notMmappableError(device: string, r: ResolvedRegion | undefined, offset: number): VfioError {
  return new VfioError('EINVAL', 'mmap of a region that is not mmappable.', {
    ...mmapPlace(device, r, offset),
    hint: 'Only regions whose REGION_INFO has VFIO_REGION_INFO_FLAG_MMAP can be mapped; trap the others.',
  });
}

export function mmapAlignError(device: string, r: ResolvedRegion, offset: number, length: number): VfioError {
  const rel = offset - r.offset;
  return new VfioError('EINVAL', `mmap of ${length} bytes at 0x${rel.toString(16)} is not page aligned.`, {
    ...mmapPlace(device, r, offset),
    hint: 'Offsets and lengths of a mapping are multiples of 4096.',
  });
}

export function mmapOutsideError(
  device: string,
  r: ResolvedRegion,
  offset: number,
  length: number,
): VfioError {
  const rel = offset - r.offset;
  return new VfioError(
    'EINVAL',
    `mmap of 0x${length.toString(16)} bytes at 0x${rel.toString(16)} is outside every mmap area.`,
    {
      ...mmapPlace(device, r, offset),
      hint: "Map only the areas listed in the region's sparse-mmap capability.",
    },
  );
}

export function noResetError(device: string): VfioError {
  return new VfioError('EINVAL', 'the device cannot be reset (VFIO_DEVICE_FLAGS_RESET is not set).', {
    device,
    hint: 'Check DEVICE_GET_INFO flags before asking for a reset.',
  });
}

export function noMigrationError(device: string): VfioError {
  return new VfioError('ENOTTY', 'the device does not support migration.', {
    device,
    hint: 'VFIO_DEVICE_FEATURE_MIGRATION with PROBE tells whether a device migrates.',
  });
}

/** An ioctl argument whose argsz is below the size of its struct. */
export function argszError(device: string, struct: string, argsz: number, minsz: number): VfioError {
  return new VfioError('EINVAL', `argsz ${argsz} is below the ${minsz} bytes of struct ${struct}.`, {
    device,
    hint: `Set argsz to at least ${minsz}.`,
  });
}

export function unknownIoctlError(device: string, request: number): VfioError {
  return new VfioError(
    'ENOTTY',
    `ioctl 0x${request.toString(16)} is not a VFIO device ioctl this device answers.`,
    { device, hint: 'See linux/vfio.h for the device ioctls.' },
  );
}

/** A region handler that returned a Promise (or any thenable): the core does not wait for it. */
export function asyncHandlerError(
  device: string,
  what: AccessKind,
  index: number,
  offset: number,
): VfioError {
  return new VfioError(
    'EIO',
    `the ${what} handler returned a Promise, so the access had not finished when it returned; the access was refused${what === 'read' ? ' and what it put in the buffer is not used' : ''}.`,
    {
      device,
      region: index,
      offset,
      hint: 'This is a bug in the plugin: a region handler must complete the access before it returns (no async, no await); keep slow work out of the access and raise an interrupt when it is done.',
    },
  );
}
