/**
 * Region handlers that are async: the core does not wait for a Promise, so an access whose
 * handler returns one is refused (EIO, naming device, region and offset), and the Promise's
 * later rejection is caught and logged instead of reaching the process.
 */
import { describe, expect, it } from 'vitest';
import { DeviceFile, type DeviceHost } from '../src/host.js';
import { PciDeviceModel, VfioError } from '../src/index.js';
import { testConfigSpace } from './helpers.js';

function asyncDevice(opts: { reject: boolean }) {
  const config = testConfigSpace('async-0', [
    { index: 0, kind: 'mem32', size: 0x100 },
    { index: 2, kind: 'mem32', size: 0x100 },
  ]);
  const reg = new Uint8Array(0x100);
  const settle = () =>
    opts.reject ? Promise.reject(new Error('the register file went away')) : Promise.resolve();
  return new PciDeviceModel({
    name: 'async-0',
    config,
    bars: {
      // Fills dst, then returns a Promise: looks like a successful read unless the core looks.
      0: {
        handler: {
          read: (o, d) => {
            d.set(reg.subarray(o, o + d.length));
            return settle();
          },
          write: async (o, s) => {
            reg.set(s, o);
            if (opts.reject) throw new Error('the register file went away');
          },
        },
      },
      // A thenable that is not a Promise counts too.
      2: {
        handler: {
          // biome-ignore lint/suspicious/noThenProperty: a thenable that is not a Promise is what this handler returns
          read: () => ({ then: () => {} }),
          write: () => {},
        },
      },
    },
  });
}

function open(reject: boolean) {
  const warnings: string[] = [];
  const host = {
    log: { debug() {}, info() {}, warn: (m: string) => warnings.push(m), error() {} },
  } as unknown as DeviceHost;
  const file = new DeviceFile(asyncDevice({ reject }), host);
  file.open();
  file.writeRegion(7, 4, new Uint8Array([2, 0])); // memory decode on
  return { file, warnings };
}

function refusal(f: () => unknown): VfioError {
  try {
    f();
  } catch (err) {
    expect(err).toBeInstanceOf(VfioError);
    return err as VfioError;
  }
  throw new Error('the access was not refused');
}

describe('region handlers that return a Promise', () => {
  it.each([false, true])(
    'refuse the read and the write with EIO naming device and region (rejecting: %s)',
    async (reject) => {
      const { file, warnings } = open(reject);
      const r = refusal(() => file.readRegion(0, 8, new Uint8Array(4)));
      expect(r.code).toBe('EIO');
      expect(r.message).toMatch(
        /^EIO: device async-0, region 0, offset 0x8: the read handler returned a Promise/,
      );
      expect(r.message).toMatch(
        /This is a bug in the plugin: a region handler must complete the access before it returns/,
      );
      const w = refusal(() => file.writeRegion(0, 0x10, new Uint8Array([1, 2])));
      expect(w.message).toMatch(
        /device async-0, region 0, offset 0x10: the write handler returned a Promise/,
      );
      expect(file.regionCounters(0)).toMatchObject({ reads: 0, writes: 0, errors: 2 });
      // The rejections arrive later: caught and logged, never an unhandled rejection.
      await new Promise((ok) => setTimeout(ok, 10));
      if (reject) {
        expect(warnings).toHaveLength(2);
        expect(warnings[0]).toMatch(
          /device async-0, region 0, offset 0x8: the Promise the read handler returned rejected after the access was refused: the register file went away/,
        );
      } else expect(warnings).toEqual([]);
    },
  );

  it('refuse any thenable, and the device keeps answering synchronous accesses', () => {
    const { file } = open(false);
    expect(refusal(() => file.readRegion(2, 0, new Uint8Array(4))).message).toMatch(
      /region 2, offset 0x0: the read handler returned a Promise/,
    );
    expect(file.writeRegion(2, 0, new Uint8Array(4))).toBe(4);
    expect(file.readRegion(7, 0, new Uint8Array(2))).toBe(2);
  });
});

describe('config write listeners that return a Promise', () => {
  it('refuse the config write with EIO (the bytes are written, the guest hears of the bug) and log the rejection', async () => {
    const { file, warnings } = open(false);
    const model = file.device as PciDeviceModel;
    let heard = 0;
    model.config.onWrite(() => {
      heard++;
    });
    const stop = model.config.onWrite(async (offset) => {
      if (offset === 0x3c) throw new Error('the interrupt line went away');
    });
    const r = refusal(() => file.writeRegion(7, 0x3c, new Uint8Array([5])));
    expect(r.code).toBe('EIO');
    expect(r.message).toMatch(/device async-0, region 7, offset 0x3c: the write handler returned a Promise/);
    expect(heard).toBe(1); // every listener still hears the write
    await new Promise((ok) => setTimeout(ok, 10));
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/rejected after the access was refused: the interrupt line went away/);
    stop();
    expect(file.writeRegion(7, 0x3c, new Uint8Array([6]))).toBe(1);
    expect(heard).toBe(2);
  });
});
