/**
 * FakeKernel: a HostSystem that plays the kernel's part for tests on machines without VFIO.
 * It keeps a small sysfs (devices, drivers, IOMMU groups, mdev types), the container, group and
 * iommufd fds with the kernel's ordering rules (SET_IOMMU needs a group, GET_DEVICE_FD needs an
 * IOMMU, a group opens once), and device fds answered by core's DeviceFile over any VfioDevice,
 * so the answers are kernel-exact where the core is. What the real kernel does is proven in the
 * guest suites; this proves the backend's own logic.
 */
import { type ErrnoName, type VfioDevice, VfioError } from '@vfiokit/core';
import {
  decodeDeviceFeature,
  decodeDmaMap,
  decodeDmaUnmap,
  decodeMigState,
  ERRNO,
  encodeMigState,
  VFIO_API_VERSION,
  VFIO_CHECK_EXTENSION,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_MASK,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
  VFIO_GET_API_VERSION,
  VFIO_GROUP_GET_DEVICE_FD,
  VFIO_GROUP_GET_STATUS,
  VFIO_GROUP_SET_CONTAINER,
  VFIO_IOMMU_MAP_DMA,
  VFIO_IOMMU_UNMAP_DMA,
  VFIO_SET_IOMMU,
  VFIO_TYPE1v2_IOMMU,
  vfio_device_feature,
} from '@vfiokit/core/abi';
import { DeviceFile, type DeviceHost, HostDma, IovaMap, type IrqTrigger } from '@vfiokit/core/host';
import {
  IOMMU_DESTROY,
  IOMMU_IOAS_ALLOC,
  IOMMU_IOAS_MAP,
  IOMMU_IOAS_UNMAP,
  VFIO_DEVICE_ATTACH_IOMMUFD_PT,
  VFIO_DEVICE_BIND_IOMMUFD,
  VFIO_GROUP_FLAGS_CONTAINER_SET,
  VFIO_GROUP_FLAGS_VIABLE,
} from '../abi.js';
import type { HostEventfd, HostSystem } from '../host/system.js';

type Fd =
  | { kind: 'container'; groups: Set<number>; iommu: boolean; maps: Map<number, number> }
  | { kind: 'group'; id: number; container: number | undefined }
  | { kind: 'device'; dev: FakeDevice; file: DeviceFile; bound: boolean }
  | { kind: 'iommufd'; ioas: Set<number>; maps: Map<number, number> }
  | { kind: 'data'; file: DeviceFile }
  | { kind: 'eventfd'; efd: FakeEventfd };

interface FakeDevice {
  readonly name: string;
  readonly group: number;
  readonly device: VfioDevice;
  readonly cdev: string | undefined;
}

export interface FakePciOptions {
  readonly name: string;
  readonly group?: number;
  /** The bound driver (default vfio-pci); undefined for none. */
  readonly driver?: string | null;
  readonly vendor?: number;
  readonly deviceId?: number;
  readonly device: VfioDevice;
  /** Give it a VFIO character device (vfio-dev/vfioN) for the iommufd path. */
  readonly cdev?: boolean;
}

export interface FakeMdevOptions {
  readonly uuid: string;
  readonly parent?: string;
  readonly type?: string;
  readonly group?: number;
  readonly device: VfioDevice;
}

class FakeEventfd implements HostEventfd {
  counter = 0;
  listener: ((n: number) => void) | undefined;
  open = true;
  constructor(readonly fd: number) {}
  signal(): void {
    if (!this.open) return;
    this.counter++;
    if (this.listener) {
      const n = this.counter;
      this.counter = 0;
      this.listener(n);
    }
  }
  read(): number | undefined {
    const n = this.counter;
    this.counter = 0;
    return n === 0 ? undefined : n;
  }
  onSignal(fn: (n: number) => void): void {
    this.listener = fn;
  }
  stopPolling(): void {
    this.listener = undefined;
  }
  close(): void {
    this.open = false;
    this.listener = undefined;
  }
}

function fail(code: ErrnoName, what: string): never {
  throw new VfioError(code, `${what} failed (${code}).`);
}

function parentDir(path: string): string {
  return path.slice(0, path.lastIndexOf('/')) || '/';
}

export class FakeKernel implements HostSystem {
  /** Whether /dev/vfio/vfio exists (the vfio module is loaded). */
  vfioLoaded = true;
  /** Whether /dev/iommu exists. */
  iommufd = false;
  /** Node paths that answer EACCES on open. */
  readonly denied = new Set<string>();
  /** Groups whose GET_STATUS says not viable. */
  readonly nonViable = new Set<number>();
  /** Every DMA mapping made through any container or IOAS: iova -> size. */
  readonly dmaLog: { iova: number; size: number; vaddr: number }[] = [];
  /** The sysfs writes made (mdev create/remove), in order. */
  readonly writes: { path: string; text: string }[] = [];
  /** How mdev `create` makes the VfioDevice of a new instance; unset: create is refused. */
  createMdev: ((type: string, uuid: string) => VfioDevice) | undefined;

  readonly #files = new Map<string, string>();
  readonly #links = new Map<string, string>();
  readonly #dirs = new Map<string, Set<string>>();
  readonly #real = new Map<string, string>();
  readonly #devices = new Map<string, FakeDevice>();
  readonly #fds = new Map<number, Fd>();
  readonly #openGroups = new Set<number>();
  #nextFd = 100;
  #nextCdev = 0;

  constructor() {
    this.#mkdir('/sys/bus/pci/devices');
    this.#mkdir('/sys/bus/mdev/devices');
    this.#mkdir('/sys/kernel/iommu_groups');
  }

  // ---- building the fake host --------------------------------------------------------------

  #mkdir(path: string): void {
    if (this.#dirs.has(path)) return;
    this.#dirs.set(path, new Set());
    if (path !== '/') {
      this.#mkdir(parentDir(path));
      this.#dirs.get(parentDir(path))?.add(path.slice(path.lastIndexOf('/') + 1));
    }
  }

  #file(path: string, text: string): void {
    this.#mkdir(parentDir(path));
    this.#dirs.get(parentDir(path))?.add(path.slice(path.lastIndexOf('/') + 1));
    this.#files.set(path, text);
  }

  #link(path: string, target: string): void {
    this.#mkdir(parentDir(path));
    this.#dirs.get(parentDir(path))?.add(path.slice(path.lastIndexOf('/') + 1));
    this.#links.set(path, target);
  }

  #groupMember(group: number, name: string, driver: string | undefined): void {
    this.#mkdir(`/sys/kernel/iommu_groups/${group}/devices`);
    this.#dirs.get(`/sys/kernel/iommu_groups/${group}/devices`)?.add(name);
    if (driver)
      this.#links.set(
        `/sys/kernel/iommu_groups/${group}/devices/${name}/driver`,
        `../../../../bus/pci/drivers/${driver}`,
      );
  }

  /** A PCI function in IOMMU group `group` (default 1) bound to `driver` (default vfio-pci). */
  addPciDevice(o: FakePciOptions): void {
    const path = `/sys/bus/pci/devices/${o.name}`;
    this.#mkdir(path);
    this.#real.set(path, `/sys/devices/pci0000:00/${o.name}`);
    const driver = o.driver === null ? undefined : (o.driver ?? 'vfio-pci');
    if (driver) this.#link(`${path}/driver`, `../../../bus/pci/drivers/${driver}`);
    const group = o.group ?? 1;
    this.#link(`${path}/iommu_group`, `../../../kernel/iommu_groups/${group}`);
    this.#groupMember(group, o.name, driver);
    this.#file(`${path}/vendor`, `0x${(o.vendor ?? 0x1234).toString(16).padStart(4, '0')}\n`);
    this.#file(`${path}/device`, `0x${(o.deviceId ?? 0x11e8).toString(16).padStart(4, '0')}\n`);
    let cdev: string | undefined;
    if (o.cdev) {
      const n = `vfio${this.#nextCdev++}`;
      this.#mkdir(`${path}/vfio-dev/${n}`);
      cdev = `/dev/vfio/devices/${n}`;
    }
    this.#devices.set(o.name, { name: o.name, group, device: o.device, cdev });
  }

  /** Another function in a group, bound to `driver` (for viability). */
  addGroupMember(group: number, name: string, driver: string | undefined): void {
    this.#groupMember(group, name, driver);
  }

  /** An mdev instance of `type` (default mtty-2) on parent `parent` (default mtty). */
  addMdev(o: FakeMdevOptions): void {
    const parent = o.parent ?? 'mtty';
    const type = o.type ?? 'mtty-2';
    const parentPath = `/sys/devices/virtual/${parent}/${parent}`;
    this.#mkdir(`${parentPath}/mdev_supported_types/${type}`);
    this.#file(`${parentPath}/mdev_supported_types/${type}/create`, '');
    const group = o.group ?? 100 + this.#devices.size;
    const path = `/sys/bus/mdev/devices/${o.uuid}`;
    this.#mkdir(path);
    this.#real.set(path, `${parentPath}/${o.uuid}`);
    this.#link(`${path}/driver`, `../../bus/mdev/drivers/${parent}`);
    this.#link(`${path}/iommu_group`, `../../../kernel/iommu_groups/${group}`);
    this.#link(`${path}/mdev_type`, `../mdev_supported_types/${type}`);
    this.#file(`${path}/remove`, '');
    this.#groupMember(group, o.uuid, parent);
    this.#devices.set(o.uuid, { name: o.uuid, group, device: o.device, cdev: undefined });
  }

  removeMdev(uuid: string): void {
    const path = `/sys/bus/mdev/devices/${uuid}`;
    this.#dirs.delete(path);
    this.#dirs.get('/sys/bus/mdev/devices')?.delete(uuid);
    for (const k of [...this.#links.keys()]) if (k.startsWith(`${path}/`)) this.#links.delete(k);
    this.#files.delete(`${path}/remove`);
    this.#devices.delete(uuid);
  }

  /** Descriptors of the fake still open (leak checks). */
  get openFds(): number {
    return this.#fds.size;
  }

  // ---- HostSystem --------------------------------------------------------------------------

  #alloc(fd: Fd): number {
    const n = this.#nextFd++;
    this.#fds.set(n, fd);
    return n;
  }

  open(path: string): number {
    if (this.denied.has(path)) fail('EACCES', `opening ${path}`);
    if (path === '/dev/vfio/vfio') {
      if (!this.vfioLoaded) fail('ENOENT', `opening ${path}`);
      return this.#alloc({ kind: 'container', groups: new Set(), iommu: false, maps: new Map() });
    }
    if (path === '/dev/iommu') {
      if (!this.iommufd) fail('ENOENT', `opening ${path}`);
      return this.#alloc({ kind: 'iommufd', ioas: new Set(), maps: new Map() });
    }
    const g = /^\/dev\/vfio\/(\d+)$/.exec(path);
    if (g) {
      const id = Number(g[1]);
      if (!this.vfioLoaded || ![...this.#devices.values()].some((d) => d.group === id))
        fail('ENOENT', `opening ${path}`);
      if (this.#openGroups.has(id)) fail('EBUSY', `opening ${path}`);
      this.#openGroups.add(id);
      return this.#alloc({ kind: 'group', id, container: undefined });
    }
    const cdev = [...this.#devices.values()].find((d) => d.cdev === path);
    if (cdev) return this.#alloc({ kind: 'device', dev: cdev, file: this.#deviceFile(cdev), bound: false });
    return fail('ENOENT', `opening ${path}`);
  }

  #deviceFile(d: FakeDevice): DeviceFile {
    const iova = new IovaMap();
    const host: DeviceHost = {
      dma: new HostDma({ map: iova, device: d.name }),
      dirty: { markDirty() {} },
      clock: { now: () => 0, schedule: () => () => {} },
      log: { debug() {}, info() {}, warn() {}, error() {} },
      resolveEventfd: (fd: number): IrqTrigger => {
        const e = this.#fds.get(fd);
        if (e?.kind !== 'eventfd') throw new VfioError('EBADF', `fd ${fd} is not an eventfd.`);
        return { signal: () => e.efd.signal() };
      },
    };
    return new DeviceFile(d.device, host);
  }

  close(fd: number): void {
    const e = this.#fds.get(fd);
    if (!e) fail('EBADF', `closing fd ${fd}`);
    this.#fds.delete(fd);
    if (e.kind === 'group') this.#openGroups.delete(e.id);
    if (e.kind === 'device') e.file.close();
    if (e.kind === 'eventfd') e.efd.close();
  }

  ioctl(fd: number, request: number, bytes: Uint8Array): number {
    const e = this.#fds.get(fd);
    if (!e) return -ERRNO.EBADF;
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    switch (e.kind) {
      case 'container':
        if (request === VFIO_IOMMU_MAP_DMA || request === VFIO_IOMMU_UNMAP_DMA) {
          if (!e.iommu) return -ERRNO.EINVAL;
          if (request === VFIO_IOMMU_MAP_DMA) {
            const m = decodeDmaMap(bytes);
            if (m.iova % 4096 || m.size % 4096 || m.size === 0) return -ERRNO.EINVAL;
            for (const [iova, size] of e.maps)
              if (m.iova < iova + size && iova < m.iova + m.size) return -ERRNO.EEXIST;
            e.maps.set(m.iova, m.size);
            this.dmaLog.push({ iova: m.iova, size: m.size, vaddr: m.vaddr });
          } else {
            const u = decodeDmaUnmap(bytes);
            for (const [iova, size] of [...e.maps])
              if (iova >= u.iova && iova + size <= u.iova + u.size) e.maps.delete(iova);
          }
          return 0;
        }
        return -ERRNO.ENOTTY;
      case 'group':
        if (request === VFIO_GROUP_GET_STATUS) {
          if (dv.getUint32(0, true) < 8) return -ERRNO.EINVAL;
          dv.setUint32(
            4,
            (this.nonViable.has(e.id) ? 0 : VFIO_GROUP_FLAGS_VIABLE) |
              (e.container !== undefined ? VFIO_GROUP_FLAGS_CONTAINER_SET : 0),
            true,
          );
          return 0;
        }
        if (request === VFIO_GROUP_SET_CONTAINER) {
          if (this.nonViable.has(e.id)) return -ERRNO.EPERM;
          if (e.container !== undefined) return -ERRNO.EBUSY;
          const cfd = dv.getInt32(0, true);
          const c = this.#fds.get(cfd);
          if (c?.kind !== 'container') return -ERRNO.EBADF;
          c.groups.add(e.id);
          e.container = cfd;
          return 0;
        }
        if (request === VFIO_GROUP_GET_DEVICE_FD) {
          const c = e.container === undefined ? undefined : this.#fds.get(e.container);
          if (c?.kind !== 'container' || !c.iommu) return -ERRNO.EINVAL;
          const name = new TextDecoder().decode(bytes.subarray(0, bytes.indexOf(0)));
          const d = this.#devices.get(name);
          if (!d || d.group !== e.id) return -ERRNO.ENODEV;
          const file = this.#deviceFile(d);
          try {
            file.open();
          } catch {
            return -ERRNO.EBUSY;
          }
          return this.#alloc({ kind: 'device', dev: d, file, bound: true });
        }
        return -ERRNO.ENOTTY;
      case 'iommufd':
        if (request === IOMMU_IOAS_ALLOC) {
          const id = 1 + e.ioas.size;
          e.ioas.add(id);
          dv.setUint32(8, id, true);
          return 0;
        }
        if (request === IOMMU_IOAS_MAP) {
          const iova = Number(dv.getBigUint64(32, true));
          const size = Number(dv.getBigUint64(24, true));
          if (!e.ioas.has(dv.getUint32(8, true))) return -ERRNO.ENOENT;
          e.maps.set(iova, size);
          this.dmaLog.push({ iova, size, vaddr: Number(dv.getBigUint64(16, true)) });
          return 0;
        }
        if (request === IOMMU_IOAS_UNMAP) {
          e.maps.delete(Number(dv.getBigUint64(8, true)));
          return 0;
        }
        if (request === IOMMU_DESTROY) return e.ioas.delete(dv.getUint32(4, true)) ? 0 : -ERRNO.ENOENT;
        return -ERRNO.ENOTTY;
      case 'device': {
        if (request === VFIO_DEVICE_BIND_IOMMUFD) {
          const ifd = this.#fds.get(dv.getInt32(8, true));
          if (ifd?.kind !== 'iommufd' || e.bound) return -ERRNO.EINVAL;
          try {
            e.file.open();
          } catch {
            return -ERRNO.EBUSY;
          }
          e.bound = true;
          dv.setUint32(12, 1, true);
          return 0;
        }
        if (request === VFIO_DEVICE_ATTACH_IOMMUFD_PT) return e.bound ? 0 : -ERRNO.EINVAL;
        if (!e.bound) return -ERRNO.EINVAL;
        const r = e.file.ioctl(request, bytes);
        bytes.set(r.out.subarray(0, bytes.length));
        if (r.ret === 0 && request === VFIO_DEVICE_FEATURE) this.#dataFd(e.file, bytes);
        return r.ret;
      }
      default:
        return -ERRNO.ENOTTY;
    }
  }

  /** A MIG_DEVICE_STATE SET that opened a stream: hand out an fd of this fake for it. */
  #dataFd(file: DeviceFile, bytes: Uint8Array): void {
    if (bytes.length < vfio_device_feature.size + 8) return;
    const f = decodeDeviceFeature(bytes);
    if ((f.flags & VFIO_DEVICE_FEATURE_MASK) !== VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE) return;
    const m = decodeMigState(f.data);
    if (m.dataFd < 0) return;
    const fd = this.#alloc({ kind: 'data', file });
    bytes.set(encodeMigState(m.deviceState, fd), vfio_device_feature.size);
  }

  ioctlValue(fd: number, request: number, value: number): number {
    const e = this.#fds.get(fd);
    if (e?.kind !== 'container') return e ? -ERRNO.ENOTTY : -ERRNO.EBADF;
    if (request === VFIO_GET_API_VERSION) return VFIO_API_VERSION;
    if (request === VFIO_CHECK_EXTENSION) return value === VFIO_TYPE1v2_IOMMU ? 1 : 0;
    if (request === VFIO_SET_IOMMU) {
      if (e.groups.size === 0 || value !== VFIO_TYPE1v2_IOMMU) return -ERRNO.EINVAL;
      if (e.iommu) return -ERRNO.EBUSY;
      e.iommu = true;
      return 0;
    }
    return -ERRNO.ENOTTY;
  }

  #device(fd: number): DeviceFile {
    const e = this.#fds.get(fd);
    if (e?.kind !== 'device' || !e.bound) fail('EBADF', `fd ${fd}`);
    return e.file;
  }

  pread(fd: number, dst: Uint8Array, position: number): number {
    return this.#device(fd).read(position, dst);
  }

  pwrite(fd: number, src: Uint8Array, position: number): number {
    return this.#device(fd).write(position, src);
  }

  read(fd: number, dst: Uint8Array): number {
    const e = this.#fds.get(fd);
    if (e?.kind !== 'data') fail('EBADF', `read of fd ${fd}`);
    const chunk = e.file.migrationRead(dst.length);
    dst.set(chunk);
    return chunk.length;
  }

  write(fd: number, src: Uint8Array): number {
    const e = this.#fds.get(fd);
    if (e?.kind !== 'data') fail('EBADF', `write of fd ${fd}`);
    e.file.migrationWrite(src);
    return src.length;
  }

  /** Mappings made and not yet unmapped. */
  readonly mapped = new Set<ArrayBuffer>();

  munmap(buffer: ArrayBuffer): void {
    this.mapped.delete(buffer);
  }

  mmap(fd: number, size: number, offset: number): ArrayBuffer {
    const m = this.#device(fd).mmap(offset, size);
    const bytes = m.memory.bytes.subarray(m.memoryOffset, m.memoryOffset + m.size);
    const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
    this.mapped.add(buffer);
    return buffer;
  }

  address(buffer: ArrayBuffer | ArrayBufferView): bigint {
    return BigInt(0x7f0000000000 + (buffer instanceof ArrayBuffer ? buffer.byteLength : buffer.byteOffset));
  }

  createEventfd(): HostEventfd {
    const efd = new FakeEventfd(this.#nextFd);
    this.#alloc({ kind: 'eventfd', efd });
    const close = efd.close.bind(efd);
    efd.close = () => {
      close();
      this.#fds.delete(efd.fd);
    };
    return efd;
  }

  readText(path: string): string | undefined {
    return this.#files.get(path);
  }

  readLink(path: string): string | undefined {
    return this.#links.get(path);
  }

  realPath(path: string): string | undefined {
    return this.#real.get(path) ?? (this.exists(path) ? path : undefined);
  }

  list(path: string): string[] | undefined {
    const d = this.#dirs.get(path);
    return d ? [...d] : undefined;
  }

  exists(path: string): boolean {
    if (this.#dirs.has(path) || this.#files.has(path) || this.#links.has(path)) return true;
    if (path === '/dev/vfio/vfio') return this.vfioLoaded;
    if (path === '/dev/iommu') return this.iommufd;
    return [...this.#devices.values()].some((d) => d.cdev === path);
  }

  writeText(path: string, text: string): void {
    this.writes.push({ path, text });
    const create = /^(.*)\/mdev_supported_types\/([^/]+)\/create$/.exec(path);
    if (create) {
      const uuid = text.trim();
      if (!this.createMdev) fail('ENOSPC', `writing ${path}`);
      if (this.#devices.has(uuid)) fail('EEXIST', `writing ${path}`);
      const parent = create[1].slice(create[1].lastIndexOf('/') + 1);
      this.addMdev({ uuid, parent, type: create[2], device: this.createMdev(create[2], uuid) });
      return;
    }
    const remove = /^\/sys\/bus\/mdev\/devices\/([^/]+)\/remove$/.exec(path);
    if (remove && this.#devices.has(remove[1])) {
      this.removeMdev(remove[1]);
      return;
    }
    fail('ENOENT', `writing ${path}`);
  }
}
