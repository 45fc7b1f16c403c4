/**
 * The facts of a device as its raw road answers them: DEVICE_INFO, every REGION_INFO (with its
 * capability chain) and IRQ_INFO, one index past the end of each, and the config space bytes.
 * The first call on the freshly opened file is GET_IRQ_INFO, before DEVICE_INFO, since a driver
 * may answer it differently then (the kernel's mtty sample does).
 */
import type { ConformanceFile } from '@vfiokit/conformance';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import {
  decodeDeviceInfo,
  decodeIrqInfo,
  decodeRegionInfo,
  decodeRegionInfoStruct,
  encodeDeviceInfo,
  encodeIrqInfo,
  encodeRegionInfoStruct,
  errnoName,
  VFIO_DEVICE_GET_INFO,
  VFIO_DEVICE_GET_IRQ_INFO,
  VFIO_DEVICE_GET_REGION_INFO,
  VFIO_REGION_INFO_FLAG_CAPS,
  vfio_device_info,
  vfio_irq_info,
  vfio_region_info,
} from '@vfiokit/core/abi';

export interface RegionFact {
  readonly index: number;
  /** `0` or the errno name. */
  readonly answer: string;
  readonly flags?: number;
  readonly size?: number;
  readonly offset?: number;
  /** Capability ids and payloads, as text (`SPARSE_MMAP [0x0+0x1000]`, `TYPE 0x80008086/1`). */
  readonly caps?: readonly string[];
}

export interface IrqFact {
  readonly index: number;
  readonly answer: string;
  readonly flags?: number;
  readonly count?: number;
}

export interface DeviceFacts {
  /** GET_IRQ_INFO of index 0 as the first call after open. */
  readonly irqInfoFirst: string;
  readonly deviceInfo: { answer: string; flags?: number; numRegions?: number; numIrqs?: number };
  readonly regions: readonly RegionFact[];
  readonly irqs: readonly IrqFact[];
  /** Config space as hex, two digits per byte, in REGION_INFO's size (at most 4096 bytes). */
  readonly config: string;
}

const answerOf = (ret: number) => (ret < 0 ? (errnoName(-ret) ?? `errno ${-ret}`) : String(ret));

function capText(c: ReturnType<typeof decodeRegionInfo>['caps'][number]): string {
  if ('areas' in c)
    return `SPARSE_MMAP ${c.areas.map((a) => `[0x${a.offset.toString(16)}+0x${a.size.toString(16)}]`).join(' ')}`;
  if ('type' in c) return `TYPE 0x${c.type.toString(16)}/${c.subtype}`;
  if ('raw' in c) return `cap ${c.id} v${c.version} (${c.raw.length} bytes)`;
  return 'MSIX_MAPPABLE';
}

function irqFact(file: ConformanceFile, index: number): IrqFact {
  const arg = encodeIrqInfo({ argsz: vfio_irq_info.size, flags: 0, index, count: 0 });
  const r = file.ioctl(VFIO_DEVICE_GET_IRQ_INFO, arg);
  if (r.ret < 0) return { index, answer: answerOf(r.ret) };
  const i = decodeIrqInfo(r.out);
  return { index, answer: answerOf(r.ret), flags: i.flags, count: i.count };
}

function regionFact(file: ConformanceFile, index: number): RegionFact {
  let argsz = vfio_region_info.size;
  for (let attempt = 0; attempt < 2; attempt++) {
    const arg = new Uint8Array(argsz);
    encodeRegionInfoStruct({ argsz, flags: 0, index, capOffset: 0, size: 0, offset: 0 }, arg);
    const r = file.ioctl(VFIO_DEVICE_GET_REGION_INFO, arg);
    if (r.ret < 0) return { index, answer: answerOf(r.ret) };
    const head = decodeRegionInfoStruct(r.out);
    if (head.flags & VFIO_REGION_INFO_FLAG_CAPS && head.argsz > argsz && attempt === 0) {
      argsz = head.argsz;
      continue;
    }
    const caps =
      head.flags & VFIO_REGION_INFO_FLAG_CAPS && head.capOffset
        ? decodeRegionInfo(r.out).caps.map(capText)
        : [];
    return { index, answer: answerOf(r.ret), flags: head.flags, size: head.size, offset: head.offset, caps };
  }
  return { index, answer: 'argsz kept growing' };
}

/** The facts of a freshly opened device file. */
export function deviceFacts(file: ConformanceFile): DeviceFacts {
  const irqInfoFirst = irqFact(file, 0).answer;
  const arg = encodeDeviceInfo({
    argsz: vfio_device_info.size,
    flags: 0,
    numRegions: 0,
    numIrqs: 0,
    capOffset: 0,
  });
  const r = file.ioctl(VFIO_DEVICE_GET_INFO, arg);
  const info = r.ret === 0 ? decodeDeviceInfo(r.out) : undefined;
  const numRegions = info?.numRegions ?? 9;
  const numIrqs = info?.numIrqs ?? 5;
  const regions = Array.from({ length: numRegions + 1 }, (_, i) => regionFact(file, i));
  const irqs = Array.from({ length: numIrqs + 1 }, (_, i) => irqFact(file, i));
  const cfg = regions[VFIO_PCI_CONFIG_REGION_INDEX];
  let config = '';
  if (cfg?.size && cfg.offset !== undefined) {
    const size = Math.min(cfg.size, 4096);
    const bytes = new Uint8Array(size);
    for (let at = 0; at < size; at += 4) {
      const piece = new Uint8Array(Math.min(4, size - at));
      try {
        file.read(cfg.offset + at, piece);
      } catch {
        piece.fill(0);
      }
      bytes.set(piece, at);
    }
    config = Buffer.from(bytes).toString('hex');
  }
  return {
    irqInfoFirst,
    deviceInfo: info
      ? { answer: '0', flags: info.flags, numRegions: info.numRegions, numIrqs: info.numIrqs }
      : { answer: answerOf(r.ret) },
    regions,
    irqs,
    config,
  };
}
