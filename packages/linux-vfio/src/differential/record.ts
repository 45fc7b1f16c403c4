/**
 * Recording what a device answers: a device file wrapped so that every call a check makes, and
 * the kernel's (or the core's) answer to it, lands in a log. A call is named by what it asks
 * (the ioctl and the fields that select the answer, the region and offset of an access), so two
 * devices that ran the same checks can be compared call by call.
 */
import type { ConformanceFile } from '@vfiokit/conformance';
import { VfioError } from '@vfiokit/core';
import {
  errnoName,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_DEVICE_QUERY_GFX_PLANE,
  VFIO_DEVICE_RESET,
  VFIO_DEVICE_SET_IRQS,
  VFIO_MIG_GET_PRECOPY_INFO,
  VFIO_PCI_OFFSET_SHIFT,
} from '@vfiokit/core/abi';

export interface RecordedCall {
  /** `SET_IRQS flags=0x21 index=0 start=0 count=1 argsz=20`, `read region 7 +0xfc len 4`. */
  readonly call: string;
  /** `0`, `4` (bytes moved), or the errno name of a refusal (`EINVAL`). */
  readonly answer: string;
  readonly refused: boolean;
}

const NAMES = new Map<number, string>([
  [VFIO_DEVICE_GET_INFO, 'GET_INFO'],
  [VFIO_DEVICE_GET_REGION_INFO, 'GET_REGION_INFO'],
  [VFIO_DEVICE_GET_IRQ_INFO, 'GET_IRQ_INFO'],
  [VFIO_DEVICE_SET_IRQS, 'SET_IRQS'],
  [VFIO_DEVICE_RESET, 'RESET'],
  [VFIO_DEVICE_FEATURE, 'FEATURE'],
  [VFIO_DEVICE_QUERY_GFX_PLANE, 'QUERY_GFX_PLANE'],
  [VFIO_MIG_GET_PRECOPY_INFO, 'MIG_GET_PRECOPY_INFO'],
]);

const hex = (n: number) => `0x${n.toString(16)}`;

/** The fields of an ioctl's argument that decide its answer. */
export function describeIoctl(request: number, arg: Uint8Array): string {
  const name = NAMES.get(request) ?? `ioctl ${hex(request)}`;
  const dv = new DataView(arg.buffer, arg.byteOffset, arg.byteLength);
  const u32 = (o: number) => (arg.length >= o + 4 ? dv.getUint32(o, true) : undefined);
  const fields: [string, number | undefined][] =
    request === VFIO_DEVICE_GET_REGION_INFO || request === VFIO_DEVICE_GET_IRQ_INFO
      ? [
          ['argsz', u32(0)],
          ['index', u32(8)],
        ]
      : request === VFIO_DEVICE_SET_IRQS
        ? [
            ['argsz', u32(0)],
            ['flags', u32(4)],
            ['index', u32(8)],
            ['start', u32(12)],
            ['count', u32(16)],
          ]
        : request === VFIO_DEVICE_FEATURE
          ? [
              ['argsz', u32(0)],
              ['flags', u32(4)],
              ...(arg.length >= 12 ? ([['state', u32(8)]] as [string, number | undefined][]) : []),
            ]
          : request === VFIO_DEVICE_GET_INFO
            ? [['argsz', u32(0)]]
            : request === VFIO_DEVICE_RESET
              ? []
              : [['bytes', arg.length]];
  const text = fields
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k}=${k === 'flags' ? hex(v as number) : v}`)
    .join(' ');
  return text ? `${name} ${text}` : name;
}

/** `region 7 +0xfc` for a vfio-pci style offset, the raw offset otherwise. */
function place(offset: number): string {
  const index = Math.floor(offset / 2 ** VFIO_PCI_OFFSET_SHIFT);
  return index < 64
    ? `region ${index} +${hex(offset - index * 2 ** VFIO_PCI_OFFSET_SHIFT)}`
    : `offset ${hex(offset)}`;
}

function refusal(err: unknown): string {
  return err instanceof VfioError ? err.code : err instanceof Error ? err.name : String(err);
}

/** `file` with every ioctl, read, write, mmap, reset and migration stream access appended to `log`. */
export function recordCalls(file: ConformanceFile, log: RecordedCall[]): ConformanceFile {
  const access = <T>(call: string, fn: () => T, answer: (v: T) => string): T => {
    try {
      const v = fn();
      log.push({ call, answer: answer(v), refused: false });
      return v;
    } catch (err) {
      log.push({ call, answer: refusal(err), refused: true });
      throw err;
    }
  };
  return {
    get name() {
      return file.name;
    },
    ioctl(request, arg) {
      const r = file.ioctl(request, arg);
      const refused = r.ret < 0;
      log.push({
        call: describeIoctl(request, arg),
        answer: refused ? (errnoName(-r.ret) ?? `errno ${-r.ret}`) : String(r.ret),
        refused,
      });
      return r;
    },
    read: (offset, dst) =>
      access(`read ${place(offset)} len ${dst.length}`, () => file.read(offset, dst), String),
    write: (offset, src) =>
      access(`write ${place(offset)} len ${src.length}`, () => file.write(offset, src), String),
    mmap: (offset, length) =>
      access(
        `mmap ${place(offset)} len ${hex(length)}`,
        () => file.mmap(offset, length),
        () => 'mapped',
      ),
    reset: () =>
      access(
        'reset()',
        () => file.reset(),
        () => '0',
      ),
    deviceInfo: () => file.deviceInfo(),
    open: () => file.open(),
    close: () => file.close(),
    migrationRead: (max) =>
      access(
        `stream read ${max}`,
        () => file.migrationRead(max),
        (c) => `${c.length} bytes`,
      ),
    migrationWrite: (chunk) =>
      access(
        `stream write ${chunk.length}`,
        () => file.migrationWrite(chunk),
        () => `${chunk.length} bytes`,
      ),
  };
}
