/**
 * VFIO_DEVICE_SET_IRQS: the kernel's argument checks (vfio_set_irqs_validate_and_prepare in
 * drivers/vfio/vfio_main.c, then vfio_pci_set_irqs_ioctl's choice of handler), decoded into an
 * IrqSetRequest for the core's IRQ state. SET_IRQS never reaches a plugin.
 */

import { decodeIrqSet } from '../abi/codecs.js';
import {
  VFIO_IRQ_SET_ACTION_MASK,
  VFIO_IRQ_SET_ACTION_TRIGGER,
  VFIO_IRQ_SET_ACTION_TYPE_MASK,
  VFIO_IRQ_SET_ACTION_UNMASK,
  VFIO_IRQ_SET_DATA_BOOL,
  VFIO_IRQ_SET_DATA_EVENTFD,
  VFIO_IRQ_SET_DATA_NONE,
  VFIO_IRQ_SET_DATA_TYPE_MASK,
} from '../abi/constants.js';
import { vfio_irq_set } from '../abi/layout.js';
import { VfioError } from '../errors.js';
import { argszError, noIrqError } from './access-errors.js';
import type { IoctlScope } from './device-host.js';
import type { IrqTrigger } from './irq-state.js';

export function ioctlSetIrqs(f: IoctlScope, out: Uint8Array): number {
  const minsz = vfio_irq_set.size; // offsetofend(struct vfio_irq_set, count)
  const s = decodeIrqSet(out);
  const place = { device: f.name, irq: s.index };
  if (s.argsz < minsz) throw argszError(f.name, 'vfio_irq_set', s.argsz, minsz);
  if (s.index >= f.info.numIrqs) throw noIrqError(f.name, s.index, f.info.numIrqs);
  if (s.count >= 0xffffffff - s.start) {
    throw new VfioError('EINVAL', `start ${s.start} + count ${s.count} overflows.`, place);
  }
  if (s.flags & ~(VFIO_IRQ_SET_DATA_TYPE_MASK | VFIO_IRQ_SET_ACTION_TYPE_MASK)) {
    throw new VfioError(
      'EINVAL',
      `flags 0x${s.flags.toString(16)} has bits outside the data and action masks.`,
      place,
    );
  }
  const num = f.irqInfos[s.index]?.count ?? 0;
  if (s.start >= num || s.start + s.count > num) {
    throw new VfioError(
      'EINVAL',
      `vectors ${s.start}..${s.start + s.count} are outside the ${num} of IRQ index ${s.index}.`,
      {
        ...place,
        hint: 'start and start + count must stay within the count GET_IRQ_INFO reports.',
      },
    );
  }
  const dataType = s.flags & VFIO_IRQ_SET_DATA_TYPE_MASK;
  let elem: number;
  if (dataType === VFIO_IRQ_SET_DATA_NONE) elem = 0;
  else if (dataType === VFIO_IRQ_SET_DATA_BOOL) elem = 1;
  else if (dataType === VFIO_IRQ_SET_DATA_EVENTFD) elem = 4;
  else {
    throw new VfioError('EINVAL', 'SET_IRQS needs exactly one data type (NONE, BOOL or EVENTFD).', place);
  }
  if (elem > 0 && (s.argsz - minsz < s.count * elem || s.data.byteLength < s.count * elem)) {
    throw new VfioError(
      'EINVAL',
      `argsz ${s.argsz} does not hold ${s.count} data elements of ${elem} bytes.`,
      {
        ...place,
        hint: `argsz must be at least ${minsz + s.count * elem}.`,
      },
    );
  }
  const actionBits = s.flags & VFIO_IRQ_SET_ACTION_TYPE_MASK;
  const action =
    actionBits === VFIO_IRQ_SET_ACTION_MASK
      ? 'mask'
      : actionBits === VFIO_IRQ_SET_ACTION_UNMASK
        ? 'unmask'
        : actionBits === VFIO_IRQ_SET_ACTION_TRIGGER
          ? 'trigger'
          : undefined;
  if (!action) {
    // vfio_pci_set_irqs_ioctl finds no handler for zero or several actions.
    throw new VfioError('ENOTTY', 'SET_IRQS needs exactly one action (MASK, UNMASK or TRIGGER).', place);
  }
  const { start, count, index } = s;
  if (dataType === VFIO_IRQ_SET_DATA_NONE) f.file.setIrqs({ action, index, start, count, data: 'none' });
  else if (dataType === VFIO_IRQ_SET_DATA_BOOL) {
    f.file.setIrqs({ action, index, start, count, data: 'bool', values: s.data.slice(0, count) });
  } else {
    if (action !== 'trigger') {
      throw new VfioError('EINVAL', 'eventfd data goes only with ACTION_TRIGGER.', place);
    }
    const dv = new DataView(s.data.buffer, s.data.byteOffset, count * 4);
    const triggers: (IrqTrigger | null)[] = [];
    for (let i = 0; i < count; i++) {
      const fd = dv.getInt32(i * 4, true);
      if (fd === -1) triggers.push(null);
      else if (fd < 0 || !f.host.resolveEventfd) {
        throw new VfioError(
          'EBADF',
          `eventfd ${fd} for vector ${start + i} is not a valid file descriptor.`,
          place,
        );
      } else triggers.push(f.host.resolveEventfd(fd));
    }
    f.file.setIrqs({ action: 'trigger', index, start, count, data: 'eventfd', triggers });
  }
  return 0;
}
