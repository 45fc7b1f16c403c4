/**
 * What opening and closing a device file do to the device, per the kernel driver it stands for:
 * a vfio-pci function is reset at first open and last close, and its config header saved at open
 * and restored at close (vfio_pci_core_enable / vfio_pci_core_disable); an mdev instance only
 * loses its interrupt triggers at close (mtty.c mtty_close, kvmgt.c intel_vgpu_close_device).
 * The migration state is the device's, seen by each of its files in turn.
 */
import { describe, expect, it } from 'vitest';
import {
  ERRNO,
  encodeDeviceFeature,
  VFIO_DEVICE_FEATURE,
  VFIO_DEVICE_FEATURE_GET,
  VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE,
} from '../src/abi.js';
import { DeviceFile, type IrqTrigger } from '../src/host.js';
import {
  type DeviceDriver,
  type MigrationOps,
  MigState,
  msixCapability,
  PciDeviceModel,
  VFIO_PCI_MSIX_IRQ_INDEX,
} from '../src/index.js';
import { fakeHost, silentLog, testConfigSpace } from './helpers.js';

const COMMAND = 0x04;
const BAR0 = 0x10;
const CONFIG = 7;

/** A model with a memory BAR, an MSI-X capability and one device register behind BAR 2. */
class RegisterModel extends PciDeviceModel {
  register = 0;
  resets = 0;
  failReset = false;
  readonly msixFlags: number;

  constructor(name: string, driver: DeviceDriver | undefined, resettable = true) {
    const config = testConfigSpace(name, [
      { index: 0, kind: 'mem32', size: 0x1000 },
      { index: 2, kind: 'mem32', size: 0x1000 },
    ]);
    const cap = config.addCapability(
      msixCapability({ tableSize: 2, tableBar: 2, tableOffset: 0x800, pbaBar: 2, pbaOffset: 0xc00 }),
    );
    super({
      name,
      config,
      resettable,
      ...(driver === undefined ? {} : { driver }),
      bars: {
        2: {
          handler: {
            read: (_o, d) => new DataView(d.buffer, d.byteOffset, d.length).setUint32(0, this.register, true),
            write: (_o, s) => {
              this.register = new DataView(s.buffer, s.byteOffset, s.length).getUint32(0, true);
            },
          },
        },
      },
    });
    this.msixFlags = cap + 2;
  }

  protected override onReset(): void {
    this.resets++;
    if (this.failReset) throw new Error('the function did not come back from reset');
    this.register = 0;
  }
}

function trigger(released: string[], name: string): IrqTrigger {
  return { signal() {}, release: () => released.push(name) };
}

function read(file: DeviceFile, offset: number, size: 2 | 4): number {
  const b = new Uint8Array(size);
  file.readRegion(CONFIG, offset, b);
  const v = new DataView(b.buffer);
  return size === 2 ? v.getUint16(0, true) : v.getUint32(0, true);
}

function write(file: DeviceFile, offset: number, size: 2 | 4, value: number): void {
  const b = new Uint8Array(size);
  const v = new DataView(b.buffer);
  if (size === 2) v.setUint16(0, value, true);
  else v.setUint32(0, value, true);
  file.writeRegion(CONFIG, offset, b);
}

/** What a user leaves behind: decode and mastering on, BAR 0 placed, MSI-X on with triggers, a register written. */
function use(file: DeviceFile, model: RegisterModel, released: string[]): void {
  write(file, COMMAND, 2, 0x0006);
  write(file, BAR0, 4, 0xfe00_0000);
  write(file, model.msixFlags, 2, 0x8000);
  file.setIrqs({
    action: 'trigger',
    index: VFIO_PCI_MSIX_IRQ_INDEX,
    start: 0,
    count: 2,
    data: 'eventfd',
    triggers: [trigger(released, `${model.name}/0`), trigger(released, `${model.name}/1`)],
  });
  file.writeRegion(2, 0x100, new Uint8Array([0x34, 0x12, 0, 0]));
}

/** What the next user finds. */
function seen(file: DeviceFile, model: RegisterModel) {
  return {
    command: read(file, COMMAND, 2),
    bar0: read(file, BAR0, 4),
    msixEnabled: (read(file, model.msixFlags, 2) & 0x8000) !== 0,
    msixTriggers: file.irqEnabled(VFIO_PCI_MSIX_IRQ_INDEX),
    register: model.register,
  };
}

const CLEAN = { command: 0, bar0: 0, msixEnabled: false, msixTriggers: false, register: 0 };

describe("a vfio-pci function (driver 'vfio-pci')", () => {
  it('is reset at first open: what the host left in it is gone before the user sees it', () => {
    const model = new RegisterModel('fn-0', 'vfio-pci');
    model.config.write(COMMAND, new Uint8Array([0x06, 0]));
    model.register = 0x55;
    const file = new DeviceFile(model, fakeHost());
    file.open();
    expect(model.resets).toBe(1);
    expect(seen(file, model)).toEqual(CLEAN);
  });

  it('is reset at last close, so a second user starts clean: COMMAND, BARs, MSI-X, triggers, device state', () => {
    const model = new RegisterModel('fn-1', 'vfio-pci');
    const released: string[] = [];
    const file = new DeviceFile(model, fakeHost());
    file.open();
    use(file, model, released);
    expect(seen(file, model)).toEqual({
      command: 6,
      bar0: 0xfe00_0000,
      msixEnabled: true,
      msixTriggers: true,
      register: 0x1234,
    });
    file.close();
    expect(released.sort()).toEqual(['fn-1/0', 'fn-1/1']);
    expect(model.resets).toBe(2);
    expect(model.register).toBe(0);
    expect(model.config.command).toBe(0);

    const second = new DeviceFile(model, fakeHost());
    second.open();
    expect(seen(second, model)).toEqual(CLEAN);
    expect(model.resets).toBe(3);
  });

  it('without a reset gets back the header saved at open (bus mastering off), while the device state stays', () => {
    const model = new RegisterModel('fn-2', 'vfio-pci', false);
    // The host left the function with decode and mastering on and BAR 0 placed.
    model.config.write(COMMAND, new Uint8Array([0x06, 0]));
    model.config.write(BAR0, new Uint8Array([0, 0, 0, 0xe0]));
    const released: string[] = [];
    const file = new DeviceFile(model, fakeHost());
    file.open();
    expect(read(file, COMMAND, 2)).toBe(0x0002);
    use(file, model, released);
    write(file, COMMAND, 2, 0x0407);
    file.close();
    expect(model.resets).toBe(0);
    expect(released).toHaveLength(2);

    const second = new DeviceFile(model, fakeHost());
    second.open();
    expect(seen(second, model)).toEqual({
      command: 0x0002,
      bar0: 0xe000_0000,
      msixEnabled: false,
      msixTriggers: false,
      register: 0x1234,
    });
    // VFIO_DEVICE_RESET stays refused for it.
    expect(second.ioctl(0x3b6f, new Uint8Array(0)).ret).toBe(-22);
  });

  it('leaves another function alone when one is closed', () => {
    const a = new RegisterModel('fn-a', 'vfio-pci');
    const b = new RegisterModel('fn-b', 'vfio-pci');
    const released: string[] = [];
    const fa = new DeviceFile(a, fakeHost());
    const fb = new DeviceFile(b, fakeHost());
    fa.open();
    fb.open();
    use(fa, a, released);
    use(fb, b, released);
    fa.close();
    expect(released.sort()).toEqual(['fn-a/0', 'fn-a/1']);
    expect(seen(fb, b)).toEqual({
      command: 6,
      bar0: 0xfe00_0000,
      msixEnabled: true,
      msixTriggers: true,
      register: 0x1234,
    });
    expect(b.resets).toBe(1);
  });

  it('opens and closes even when its reset fails, saying so, and still restores the header', () => {
    const model = new RegisterModel('fn-3', 'vfio-pci');
    const warnings: string[] = [];
    const host = fakeHost();
    const file = new DeviceFile(model, { ...host, log: { ...host.log, warn: (m) => warnings.push(m) } });
    model.failReset = true;
    file.open();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/fn-3: resetting the function at open failed.*did not come back from reset/);
    const released: string[] = [];
    use(file, model, released);
    file.close();
    expect(warnings).toHaveLength(2);
    expect(warnings[1]).toMatch(/fn-3: resetting the function at close failed/);
    expect(file.opened).toBe(false);
    // The header saved at open (after the failed reset: COMMAND 0, BAR 0 unplaced) is back.
    expect(model.config.command).toBe(0);
    expect(model.config.raw[BAR0 + 3]).toBe(0);
  });
});

describe("an mdev instance (the default driver, 'mdev')", () => {
  it('loses its interrupt triggers at close but keeps its config and device state until a reset (mtty_close)', () => {
    const model = new RegisterModel('mdev-0', undefined);
    const released: string[] = [];
    const file = new DeviceFile(model, fakeHost());
    file.open();
    expect(model.resets).toBe(0);
    use(file, model, released);
    file.close();
    expect(released.sort()).toEqual(['mdev-0/0', 'mdev-0/1']);
    expect(model.resets).toBe(0);

    const second = new DeviceFile(model, fakeHost());
    second.open();
    expect(seen(second, model)).toEqual({
      command: 6,
      bar0: 0xfe00_0000,
      msixEnabled: true,
      msixTriggers: false,
      register: 0x1234,
    });
    // What a VMM does at power-on (QEMU's system reset) makes it clean.
    second.reset();
    expect(seen(second, model)).toEqual(CLEAN);
  });
});

/**
 * A device whose saving stream hands out its state, a count that each new stream starts from;
 * `onClose` sees the count of each stream the core closes.
 */
function migratingModel(
  name: string,
  driver: DeviceDriver | undefined,
  resettable = true,
  onClose?: (stream: number) => void,
): PciDeviceModel {
  let streams = 0;
  const migration: MigrationOps = {
    caps: { stopCopy: true, p2p: false, preCopy: false },
    step(_from, to) {
      if (to !== MigState.STOP_COPY) return undefined;
      const mine = Uint8Array.of(++streams, 0xaa);
      let sent = false;
      return {
        read: () => {
          if (sent) return new Uint8Array(0);
          sent = true;
          return mine;
        },
        close: () => onClose?.(mine[0]),
      };
    },
  };
  return new PciDeviceModel({
    name,
    config: testConfigSpace(name, [{ index: 0, kind: 'mem32', size: 0x1000 }]),
    resettable,
    ...(driver === undefined ? {} : { driver }),
    migration,
  });
}

describe('a migration data stream at close', () => {
  it('ends with the device file: the next user of an mdev keeps the state but gets none of the stream (mtty_disable_files)', () => {
    const model = migratingModel('mdev-mig', undefined);
    const second = new DeviceFile(model, fakeHost());
    second.open();
    expect(second.setMigrationState(MigState.STOP_COPY)).toBeGreaterThanOrEqual(0);
    second.close();
    // the same device file opened again (its migration state is the device's, kept)
    second.open();
    expect(second.migrationState).toBe(MigState.STOP_COPY);
    expect(() => second.migrationRead(64)).toThrow(
      /mdev-mig.*no migration data stream is open to read in state STOP_COPY/,
    );
    // out and back in: a stream of its own
    second.setMigrationState(MigState.STOP);
    expect(second.setMigrationState(MigState.STOP_COPY)).toBeGreaterThanOrEqual(0);
    expect(Array.from(second.migrationRead(64))).toEqual([2, 0xaa]);
    second.close();
  });

  it('is closed with the device file, and a close() that throws is logged while the file still closes', () => {
    const closed: number[] = [];
    const model = migratingModel('mdev-release', undefined, true, (n) => {
      closed.push(n);
      if (n === 2) throw new Error('the stream was freed twice');
    });
    const errors: string[] = [];
    const file = new DeviceFile(model, {
      ...fakeHost(),
      log: { ...silentLog, error: (m) => errors.push(m) },
    });
    file.open();
    file.setMigrationState(MigState.STOP_COPY);
    expect(closed).toEqual([]);
    file.close();
    expect(closed).toEqual([1]);
    file.open();
    file.setMigrationState(MigState.STOP);
    file.setMigrationState(MigState.STOP_COPY);
    file.close();
    expect(closed).toEqual([1, 2]);
    expect(errors).toEqual([
      expect.stringMatching(
        /^EIO: device mdev-release: closing a dropped migration data stream failed: the stream was freed twice\./,
      ),
    ]);
    expect(file.opened).toBe(false);
    file.open();
    expect(file.migrationState).toBe(MigState.STOP_COPY);
    file.close();
    expect(closed).toEqual([1, 2]);
  });

  it('ends with the reset at last close of a vfio-pci function, which runs again (vfio_pci_core_disable)', () => {
    const model = migratingModel('pf-mig', 'vfio-pci');
    const first = new DeviceFile(model, fakeHost());
    first.open();
    first.setMigrationState(MigState.STOP_COPY);
    first.close();
    const second = new DeviceFile(model, fakeHost());
    second.open();
    expect(second.migrationState).toBe(MigState.RUNNING);
    second.close();
  });
});

/** MIG_DEVICE_STATE GET as a raw ioctl: the return value and the state it reports. */
function getStateIoctl(file: DeviceFile): { ret: number; state: number } {
  const arg = encodeDeviceFeature({
    argsz: 16,
    flags: VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE | VFIO_DEVICE_FEATURE_GET,
    data: new Uint8Array(8),
  });
  const { ret, out } = file.ioctl(VFIO_DEVICE_FEATURE, arg);
  return { ret, state: new DataView(out.buffer, out.byteOffset).getUint32(8, true) };
}

describe('one migration state per device, whichever file opens it', () => {
  it("an mdev's next device file finds the state the last one left, with none of its stream (mtty keeps mdev_state->state)", () => {
    const model = migratingModel('mdev-next', undefined);
    const first = new DeviceFile(model, fakeHost());
    first.open();
    expect(first.setMigrationState(MigState.STOP_COPY)).toBeGreaterThanOrEqual(0);
    first.close();
    const next = new DeviceFile(model, fakeHost());
    next.open();
    expect(next.migrationState).toBe(MigState.STOP_COPY);
    expect(getStateIoctl(next)).toEqual({ ret: 0, state: MigState.STOP_COPY });
    expect(() => next.migrationRead(64)).toThrow(
      /EBADF: device mdev-next.*no migration data stream is open to read in state STOP_COPY/,
    );
    // out and back in: the next stream is its own
    next.setMigrationState(MigState.STOP);
    expect(next.setMigrationState(MigState.STOP_COPY)).toBeGreaterThanOrEqual(0);
    expect(Array.from(next.migrationRead(64))).toEqual([2, 0xaa]);
    // the reset is what runs it again (mtty_reset's deferred reset)
    next.reset();
    expect(next.migrationState).toBe(MigState.RUNNING);
    next.close();
  });

  it('a vfio-pci function runs again at open even without a reset (mlx5vf_pci_open_device sets RUNNING)', () => {
    const model = migratingModel('pf-noreset', 'vfio-pci', false);
    const file = new DeviceFile(model, fakeHost());
    file.open();
    file.setMigrationState(MigState.STOP_COPY);
    file.close();
    file.open();
    expect(file.migrationState).toBe(MigState.RUNNING);
    expect(() => file.migrationRead(64)).toThrow(/EINVAL: device pf-noreset.*in state RUNNING/);
    // and the walk starts from RUNNING: a new stream of its own
    expect(file.setMigrationState(MigState.STOP_COPY)).toBeGreaterThanOrEqual(0);
    expect(Array.from(file.migrationRead(64))).toEqual([2, 0xaa]);
    file.close();
  });

  it('a closed device file neither reads nor moves the state of the device another file has open', () => {
    const model = migratingModel('mdev-shared', undefined);
    const first = new DeviceFile(model, fakeHost());
    first.open();
    first.setMigrationState(MigState.STOP);
    first.close();
    const second = new DeviceFile(model, fakeHost());
    second.open();
    expect(second.setMigrationState(MigState.STOP_COPY)).toBeGreaterThanOrEqual(0);
    expect(() => first.setMigrationState(MigState.RUNNING)).toThrow(
      /EBADF: device mdev-shared: MIG_DEVICE_STATE SET on a device file that is not open/,
    );
    expect(() => first.migrationState).toThrow(/EBADF: device mdev-shared: MIG_DEVICE_STATE GET/);
    expect(() => first.migrationRead(64)).toThrow(/EBADF: device mdev-shared: a read of migration data/);
    expect(getStateIoctl(first).ret).toBe(-ERRNO.EBADF);
    // the open file's state and stream are untouched
    expect(second.migrationState).toBe(MigState.STOP_COPY);
    expect(Array.from(second.migrationRead(64))).toEqual([1, 0xaa]);
    // a second open while one stands is refused
    expect(() => first.open()).toThrow(/EBUSY: device mdev-shared: the device is already open/);
    second.close();
  });
});
