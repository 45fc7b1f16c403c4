import { createTestHost } from '@vfiokit/conformance';
import {
  allocateSharedMemory,
  VFIO_PCI_CONFIG_REGION_INDEX,
  VFIO_PCI_INTX_IRQ_INDEX,
  VFIO_PCI_MSI_IRQ_INDEX,
  VfioError,
} from '@vfiokit/core';
import { vfioPciIndexToOffset } from '@vfiokit/core/abi';
import { DeviceFile } from '@vfiokit/core/host';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectVfioUser,
  connectVfioUserSync,
  type VfioUserClientDevice,
} from '../src/client/client-device.js';
import { allocateMemfdMemory } from '../src/native/memory.js';
import {
  BAR0_SIZE,
  DEVICE_ID_VALUE,
  MMAP_AREA,
  REG_DMA_ADDR,
  REG_DMA_CMD,
  REG_DMA_LEN,
  REG_DMA_STATUS,
  REG_DOORBELL,
  REG_ID,
  REG_SCRATCH,
} from './device.js';
import { waitFor } from './helpers.js';
import { ServerProcess } from './server-process.js';

let srv: ServerProcess;
beforeAll(async () => {
  srv = await ServerProcess.start(2);
}, 30_000);
afterAll(async () => {
  await srv?.stop();
});

const BAR0 = vfioPciIndexToOffset(0);
const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);

function openLocal(dev: VfioUserClientDevice) {
  const host = createTestHost({ device: dev.name });
  const file = new DeviceFile(dev, host);
  file.open();
  // COMMAND.MEMORY | BUS_MASTER
  file.write(vfioPciIndexToOffset(VFIO_PCI_CONFIG_REGION_INDEX) + 4, new Uint8Array([0x06, 0]));
  const reg = (off: number) => {
    const b = new Uint8Array(4);
    file.read(BAR0 + off, b);
    return new DataView(b.buffer).getUint32(0, true);
  };
  const setReg = (off: number, v: number) => file.write(BAR0 + off, u32(v));
  return { host, file, reg, setReg };
}

describe('VfioUserClientDevice', () => {
  it('reads device, region and IRQ info up front and answers them synchronously', async () => {
    const dev = await connectVfioUser(srv.paths[0]);
    try {
      expect(dev.info()).toEqual({ reset: true, numRegions: 9, numIrqs: 5 });
      expect(dev.regionInfo(0)).toMatchObject({
        size: BAR0_SIZE,
        read: true,
        write: true,
        mmap: true,
        sparseMmap: [MMAP_AREA],
      });
      expect(dev.regionInfo(1)).toBeUndefined();
      expect(dev.regionInfo(7)).toMatchObject({ size: 256, mmap: false });
      expect(dev.irqInfo(VFIO_PCI_INTX_IRQ_INDEX)).toMatchObject({
        count: 1,
        maskable: true,
        automasked: true,
      });
      expect(dev.irqInfo(VFIO_PCI_MSI_IRQ_INDEX)).toMatchObject({ count: 4, noresize: true });
      expect(dev.migration?.caps).toEqual({ stopCopy: true, p2p: false, preCopy: false });
    } finally {
      dev.disconnect();
    }
  });

  it('forwards region reads and writes, and maps the sparse area so direct accesses skip the socket', () => {
    const dev = connectVfioUserSync(srv.paths[0]);
    try {
      const { file, reg, setReg } = openLocal(dev);
      expect(reg(REG_ID)).toBe(DEVICE_ID_VALUE);
      setReg(REG_SCRATCH, 0xcafe);
      expect(reg(REG_SCRATCH)).toBe(0xcafe);
      const m = file.mmap(BAR0 + MMAP_AREA.offset, MMAP_AREA.size);
      m.memory.bytes[m.memoryOffset + 8] = 0x42;
      expect(reg(MMAP_AREA.offset + 8) & 0xff).toBe(0x42); // the server sees the client's store
      setReg(MMAP_AREA.offset + 12, 0x11223344);
      expect(m.memory.bytes[m.memoryOffset + 12]).toBe(0x44); // and the client sees the server's
      file.close();
    } finally {
      dev.disconnect();
    }
  });

  it('delivers MSI through real eventfds to the local device file', async () => {
    const dev = await connectVfioUser(srv.paths[0]);
    try {
      const { host, file, setReg } = openLocal(dev);
      const fds = [host.createEventfd(), host.createEventfd()];
      file.setIrqs({
        action: 'trigger',
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 0,
        count: 2,
        data: 'eventfd',
        triggers: fds.map((fd) => host.resolveEventfd(fd)),
      });
      setReg(REG_DOORBELL, 1);
      await waitFor(() => host.eventfd(fds[1])!.count === 1);
      expect(host.eventfd(fds[0])!.count).toBe(0);
      file.close();
    } finally {
      dev.disconnect();
    }
  });

  it('re-arms INTx on the server after each signal, leaving the masking to the local device file', async () => {
    const dev = await connectVfioUser(srv.paths[0]);
    try {
      const { host, file, setReg } = openLocal(dev);
      const fd = host.createEventfd();
      file.setIrqs({
        action: 'trigger',
        index: 0,
        start: 0,
        count: 1,
        data: 'eventfd',
        triggers: [host.resolveEventfd(fd)],
      });
      setReg(REG_DOORBELL, 0);
      await waitFor(() => host.eventfd(fd)!.count === 1);
      file.setIrqs({ action: 'unmask', index: 0, start: 0, count: 1, data: 'none' });
      setReg(REG_DOORBELL, 0);
      await waitFor(() => host.eventfd(fd)!.count === 2);
      file.close();
    } finally {
      dev.disconnect();
    }
  });

  it('DMA_MAPs guest memory with its fd so device DMA reads it directly', async () => {
    const guest = allocateMemfdMemory('guest', 0x10000);
    const dev = await connectVfioUser(srv.paths[0], { guestMemory: guest });
    try {
      guest.bytes.set([5, 6, 7, 8], 0x4000);
      const { file, reg, setReg } = openLocal(dev);
      setReg(REG_DMA_ADDR, 0x4000);
      setReg(REG_DMA_LEN, 4);
      setReg(REG_DMA_CMD, 1);
      expect(reg(REG_DMA_STATUS)).toBe(1);
      expect(reg(MMAP_AREA.offset)).toBe(0x08070605);
      file.close();
      expect((await srv.stats())[0].mappings).toBe(0);
    } finally {
      dev.disconnect();
      guest.close();
    }
  });

  it('answers the server DMA_READ and DMA_WRITE from shared guest memory without an fd', async () => {
    const guest = allocateSharedMemory(0x10000);
    const dev = await connectVfioUser(srv.paths[0], { guestMemory: guest });
    try {
      guest.bytes.set([1, 3, 5, 7], 0x2000);
      const { file, reg, setReg } = openLocal(dev);
      setReg(REG_DMA_ADDR, 0x2000);
      setReg(REG_DMA_LEN, 4);
      setReg(REG_DMA_CMD, 1);
      expect(reg(REG_DMA_STATUS)).toBe((0x80000000 | 14) >>> 0); // synchronous DMA cannot reach it
      setReg(REG_DMA_CMD, 2);
      let status = 0;
      await waitFor(() => (status = reg(REG_DMA_STATUS)) !== 0);
      expect(status).toBe(1);
      expect(reg(MMAP_AREA.offset)).toBe(0x07050301);
      setReg(REG_DMA_ADDR, 0x3000);
      setReg(REG_DMA_CMD, 3);
      await waitFor(() => reg(REG_DMA_STATUS) === 1);
      expect(Array.from(guest.bytes.subarray(0x3000, 0x3004))).toEqual([1, 3, 5, 7]);
      file.close();
    } finally {
      dev.disconnect();
    }
  });

  it('answers DMA from guest memory in an ordinary ArrayBuffer too, while the caller waits for a reply', async () => {
    const bytes = new Uint8Array(0x10000);
    const dev = await connectVfioUser(srv.paths[0], { guestMemory: { size: bytes.length, bytes } });
    try {
      bytes.set([2, 4, 6, 8], 0x4000);
      const { file, reg, setReg } = openLocal(dev);
      setReg(REG_DMA_ADDR, 0x4000);
      setReg(REG_DMA_LEN, 4);
      setReg(REG_DMA_CMD, 2);
      // Synchronous polling without yielding: the DMA_READ is answered inside the reads.
      let status = 0;
      for (let i = 0; i < 100_000 && status === 0; i++) status = reg(REG_DMA_STATUS);
      expect(status).toBe(1);
      expect(reg(MMAP_AREA.offset)).toBe(0x08060402);
      file.close();
    } finally {
      dev.disconnect();
    }
  });

  it('carries migration state from one served device to another through MIG_DEVICE_STATE and MIG_DATA', async () => {
    const a = await connectVfioUser(srv.paths[0]);
    const b = await connectVfioUser(srv.paths[1]);
    try {
      const src = openLocal(a);
      const dst = openLocal(b);
      src.setReg(REG_SCRATCH, 0xfeed);
      src.setReg(MMAP_AREA.offset + 0x100, 0x12345678);
      src.file.setMigrationState(1); // STOP
      src.file.setMigrationState(3); // STOP_COPY
      const chunks: Uint8Array[] = [];
      for (let c = src.file.migrationRead(1000); c.length > 0; c = src.file.migrationRead(1000))
        chunks.push(c);
      expect(chunks.reduce((n, c) => n + c.length, 0)).toBe(a.migration!.stopCopySize!());
      dst.file.setMigrationState(1);
      dst.file.setMigrationState(4); // RESUMING
      for (const c of chunks) dst.file.migrationWrite(c);
      dst.file.setMigrationState(1);
      dst.file.setMigrationState(2); // RUNNING
      expect(dst.reg(REG_SCRATCH)).toBe(0xfeed);
      expect(dst.reg(MMAP_AREA.offset + 0x100)).toBe(0x12345678);
      src.file.close();
      dst.file.close();
    } finally {
      a.disconnect();
      b.disconnect();
    }
  });

  it('resets the device on the server', async () => {
    const dev = await connectVfioUser(srv.paths[1]);
    try {
      const before = (await srv.stats())[1].resets;
      dev.reset();
      expect((await srv.stats())[1].resets).toBe(before + 1);
    } finally {
      dev.disconnect();
    }
  });

  it('gives ECONNRESET, not a hang, when the server dies', async () => {
    const lone = await ServerProcess.start(1);
    const dev = await connectVfioUser(lone.paths[0], { timeoutMs: 2000 });
    const { file } = openLocal(dev);
    await lone.stop();
    const t0 = Date.now();
    let err: unknown;
    try {
      file.read(BAR0 + REG_ID, new Uint8Array(4));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VfioError);
    expect((err as VfioError).code).toBe('ECONNRESET');
    expect(Date.now() - t0).toBeLessThan(1000);
    expect(() => dev.reset()).toThrow(/ECONNRESET/);
    file.close();
    dev.disconnect();
  });

  it('fails to connect to a path nobody serves with a VfioError', async () => {
    await expect(connectVfioUser(`${srv.dir}/nobody.sock`, { connectTimeoutMs: 500 })).rejects.toBeInstanceOf(
      VfioError,
    );
  });
});
