/**
 * QEMU's own record of a boot (`-trace` with the log backend, one event per line), read for
 * what vfio did: hw/vfio/trace-events prints
 *   vfio_region_read (<device>:region<n>+0x<offset>, <size>) = 0x<data>
 *   vfio_region_write (<device>:region<n>+0x<offset>, 0x<data>, <size>)
 *   vfio_region_mmap Region <device> BAR <n> mmaps[<i>] [0x<start> - 0x<end>]
 * where a vfio-user device is named `vfio-user:<socket>`. A trapped access is one that went
 * through vfio_region_read/write; a mapped one never reaches QEMU's vfio code.
 */

/** Every trapped access of the device served on `socket`: region index and offset. */
export function trappedList(trace: string, socket: string): { region: number; offset: number }[] {
  const out: { region: number; offset: number }[] = [];
  const prefix = `(vfio-user:${socket}:region`;
  for (const line of trace.split('\n')) {
    if (!line.startsWith('vfio_region_read ') && !line.startsWith('vfio_region_write ')) continue;
    const at = line.indexOf(prefix);
    if (at < 0) continue;
    const m = /^(\d+)\+0x([0-9a-f]+),/.exec(line.slice(at + prefix.length));
    if (m) out.push({ region: Number(m[1]), offset: Number.parseInt(m[2], 16) });
  }
  return out;
}

/** Trapped accesses per region index of the device served on `socket`. */
export function trappedAccesses(trace: string, socket: string): Map<number, number> {
  const counts = new Map<number, number>();
  for (const a of trappedList(trace, socket)) counts.set(a.region, (counts.get(a.region) ?? 0) + 1);
  return counts;
}

/** The sparse-mmap areas QEMU mapped for BAR `bar` of the device on `socket`: [start, end] inclusive, region offsets. */
export function barMappings(trace: string, socket: string, bar: number): { start: number; end: number }[] {
  const out: { start: number; end: number }[] = [];
  const head = `vfio_region_mmap Region vfio-user:${socket} BAR ${bar} mmaps[`;
  for (const line of trace.split('\n')) {
    if (!line.startsWith(head)) continue;
    const m = /\[0x([0-9a-f]+) - 0x([0-9a-f]+)\]\s*$/.exec(line);
    if (m) out.push({ start: Number.parseInt(m[1], 16), end: Number.parseInt(m[2], 16) });
  }
  return out;
}

export function bar2Mapping(trace: string, socket: string): { start: number; end: number } | undefined {
  return barMappings(trace, socket, 2)[0];
}

/**
 * QEMU 10.2 asks every mmapped region for a dma-buf (hw/vfio/region.c,
 * vfio_region_create_dma_buf: VFIO_DEVICE_FEATURE_DMA_BUF, so other devices can DMA into the
 * BAR through the IOMMU). Its vfio-user client has no device_feature operation
 * (hw/vfio-user/device.c, vfio_user_device_io_ops_sock), so vfio_device_get_feature() in
 * hw/vfio/device.c answers -EINVAL without a message reaching the server, and QEMU prints
 * "BAR n: failed to create dma-buf: PCI BAR IOMMU mappings may fail: Invalid argument". The
 * mapping itself stands; only peer-to-peer DMA into the BAR is unavailable.
 *
 * The BARs QEMU warned about, each with whether it mapped that BAR anyway.
 */
export function dmaBufWarnings(
  qemuLog: string,
  trace: string,
  socket: string,
): { bar: number; mapped: boolean }[] {
  const out: { bar: number; mapped: boolean }[] = [];
  const re = new RegExp(
    `vfio-user:${socket.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} BAR (\\d+): failed to create dma-buf`,
    'g',
  );
  for (const m of qemuLog.matchAll(re)) {
    const bar = Number(m[1]);
    out.push({ bar, mapped: barMappings(trace, socket, bar).length > 0 });
  }
  return out;
}
