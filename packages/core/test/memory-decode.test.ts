/**
 * COMMAND.MEMORY gates a model's memory BARs, as vfio-pci refuses them while it is clear (EIO):
 * handler BARs and memory-backed BARs alike, reads and writes, on every road (region index or
 * file offset); I/O BARs and config space answer whatever it holds.
 */
import { describe, expect, it } from 'vitest';
import { DeviceFile } from '../src/host.js';
import { allocateSharedMemory, PciDeviceModel, VfioError } from '../src/index.js';
import { fakeHost, testConfigSpace } from './helpers.js';

function decodeDevice() {
  const config = testConfigSpace('decode-0', [
    { index: 0, kind: 'mem32', size: 0x100 },
    { index: 1, kind: 'io', size: 0x10 },
    { index: 2, kind: 'mem32', size: 0x1000 },
  ]);
  const regs = new Uint8Array(0x100).fill(0x5a);
  const ports = new Uint8Array(0x10).fill(0x3c);
  const served: string[] = [];
  const device = new PciDeviceModel({
    name: 'decode-0',
    config,
    bars: {
      0: {
        handler: {
          read: (o, d) => {
            served.push(`read 0 ${o}`);
            d.set(regs.subarray(o, o + d.length));
          },
          write: (o, s) => {
            served.push(`write 0 ${o}`);
            regs.set(s, o);
          },
        },
      },
      1: {
        handler: {
          read: (o, d) => d.set(ports.subarray(o, o + d.length)),
          write: (o, s) => ports.set(s, o),
        },
      },
      2: { memory: allocateSharedMemory(0x1000) },
    },
  });
  const file = new DeviceFile(device, fakeHost());
  file.open();
  return { file, served };
}

const COMMAND = 4;
function command(file: DeviceFile, value: number): void {
  file.writeRegion(7, COMMAND, new Uint8Array([value, 0]));
}

function refusal(f: () => unknown): VfioError {
  try {
    f();
  } catch (err) {
    if (err instanceof VfioError) return err;
    throw err;
  }
  throw new Error('the access was served');
}

describe('COMMAND.MEMORY and the BARs', () => {
  it('refuses memory BAR accesses with EIO naming device, region and offset while it is clear', () => {
    const { file, served } = decodeDevice();
    command(file, 0);
    for (const [index, offset] of [
      [0, 0x10],
      [2, 0x800],
    ]) {
      const read = refusal(() => file.readRegion(index, offset, new Uint8Array(4)));
      expect(read.code).toBe('EIO');
      expect(read.message).toMatch(/memory decode is disabled/);
      expect(read.message).toContain('decode-0');
      expect(read.place).toMatchObject({ device: 'decode-0', region: index, offset });
      const write = refusal(() => file.writeRegion(index, offset, new Uint8Array(4)));
      expect(write).toMatchObject({ code: 'EIO', place: { region: index, offset } });
    }
    // the file-offset road too
    const viaFile = refusal(() => file.read(file.regionInfo(0).offset + 8, new Uint8Array(2)));
    expect(viaFile).toMatchObject({ code: 'EIO', place: { region: 0, offset: 8 } });
    expect(served).toEqual([]);
    expect(file.regionCounters(0)).toMatchObject({ reads: 0, writes: 0, errors: 3 });
  });

  it('serves memory BARs while it is set, and refuses them again once it is cleared', () => {
    const { file, served } = decodeDevice();
    command(file, 2);
    const dst = new Uint8Array(4);
    file.readRegion(0, 0x10, dst);
    expect([...dst]).toEqual([0x5a, 0x5a, 0x5a, 0x5a]);
    file.writeRegion(2, 0x800, new Uint8Array([1, 2, 3, 4]));
    file.readRegion(2, 0x800, dst);
    expect([...dst]).toEqual([1, 2, 3, 4]);
    expect(served).toEqual(['read 0 16']);
    command(file, 0);
    expect(refusal(() => file.readRegion(0, 0x10, dst)).code).toBe('EIO');
    expect(refusal(() => file.readRegion(2, 0x800, dst)).code).toBe('EIO');
    expect(served).toEqual(['read 0 16']);
  });

  it('serves I/O BARs and config space whatever it holds', () => {
    const { file } = decodeDevice();
    for (const value of [0, 2]) {
      command(file, value);
      const dst = new Uint8Array(2);
      file.readRegion(1, 4, dst);
      expect([...dst]).toEqual([0x3c, 0x3c]);
      file.readRegion(7, COMMAND, dst);
      expect(dst[0]).toBe(value);
    }
  });
});
