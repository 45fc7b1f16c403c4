import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VFIO_PCI_CONFIG_REGION_INDEX, VFIO_PCI_INTX_IRQ_INDEX, VFIO_PCI_MSI_IRQ_INDEX } from '@vfiokit/core';
import {
  VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT,
  VFIO_DEVICE_FEATURE_DMA_LOGGING_START,
  VFIO_DEVICE_FEATURE_MIGRATION,
  VFIO_DEVICE_FLAGS_PCI,
  VFIO_DEVICE_FLAGS_RESET,
  VFIO_DMA_UNMAP_FLAG_ALL,
  VFIO_REGION_INFO_FLAG_CAPS,
  VFIO_REGION_INFO_FLAG_MMAP,
} from '@vfiokit/core/abi';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/host.js';
import { Eventfd } from '../src/native/eventfd.js';
import { allocateMemfdMemory, closeFds, mapFd, openFdCount } from '../src/native/memory.js';
import {
  VFIO_USER_DEVICE_GET_REGION_IO_FDS,
  VFIO_USER_DMA_READ,
  VFIO_USER_DMA_WRITE,
  VFIO_USER_REGION_READ,
} from '../src/protocol/constants.js';
import { decodeDeviceInfoReply, encodeDeviceInfoRequest } from '../src/protocol/device.js';
import {
  decodeDmaReadRequest,
  decodeDmaWriteRequest,
  encodeDmaMapRequest,
  encodeDmaReadReply,
  encodeDmaUnmapRequest,
  encodeDmaWriteReply,
} from '../src/protocol/dma.js';
import {
  decodeDeviceFeatureReply,
  encodeDeviceFeatureRequest,
  encodeDmaLoggingControl,
  encodeDmaLoggingReport,
  featureFlags,
} from '../src/protocol/feature.js';
import type { Frame } from '../src/protocol/framing.js';
import { encodeEmptyRequest, isErrorReply } from '../src/protocol/header.js';
import { decodeIrqInfoReply, encodeIrqInfoRequest, encodeSetIrqsRequest } from '../src/protocol/irqs.js';
import {
  decodeRegionReadReply,
  encodeRegionReadRequest,
  encodeRegionWriteRequest,
} from '../src/protocol/region.js';
import {
  decodeRegionInfoReply,
  decodeRegionIoFdsReply,
  encodeRegionInfoRequest,
  encodeRegionIoFdsRequest,
} from '../src/protocol/region-info.js';
import { decodeVersion, encodeVersionRequest } from '../src/protocol/version.js';
import { createPluginHostForServer } from '../src/server/plugin-host.js';
import { serveDevice, type VfioUserServer } from '../src/server/server.js';
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
  TestDevice,
} from './device.js';
import { waitFor } from './helpers.js';
import { RawClient } from './raw-client.js';

const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
const errnoOf = (f: Frame) => (isErrorReply(f.header) ? f.header.errno : 0);

let dir: string;
let path: string;
let device: TestDevice;
let server: VfioUserServer;
let client: RawClient;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vfio-user-server-'));
  path = join(dir, 'dev.sock');
  device = new TestDevice('test0', createPluginHostForServer({ log: silentLogger }));
  server = await serveDevice({ socketPath: path, device, log: silentLogger });
  client = await RawClient.connect(path);
});

afterEach(async () => {
  client.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

async function ready(): Promise<void> {
  expect(errnoOf(await client.handshake())).toBe(0);
  // COMMAND.MEMORY on: BAR0 decodes.
  const cmd = new Uint8Array([0x06, 0x00]);
  const w = await client.call(
    encodeRegionWriteRequest(client.nextId(), {
      offset: 4,
      region: VFIO_PCI_CONFIG_REGION_INDEX,
      count: 2,
      data: cmd,
    }),
  );
  expect(errnoOf(w)).toBe(0);
}

async function readReg(offset: number): Promise<number> {
  const f = await client.call(encodeRegionReadRequest(client.nextId(), { offset, region: 0, count: 4 }));
  expect(errnoOf(f)).toBe(0);
  return new DataView(decodeRegionReadReply(f.payload).data.slice().buffer).getUint32(0, true);
}

async function writeReg(offset: number, value: number): Promise<Frame> {
  return client.call(
    encodeRegionWriteRequest(client.nextId(), { offset, region: 0, count: 4, data: u32(value) }),
  );
}

describe('VERSION', () => {
  it('answers with minor min(client, 2) and the server limits', async () => {
    const f = await client.call(encodeVersionRequest(1, { major: 0, minor: 99, capabilities: {} }));
    const v = decodeVersion(f.payload);
    expect(v).toMatchObject({ major: 0, minor: 2 });
    expect(v.capabilities?.maxDataXferSize).toBe(1 << 20);
    expect(v.capabilities?.maxMsgFds).toBe(8);
    expect(v.capabilities?.migration).toEqual({ pgsize: 4096 }); // the device migrates
  });

  it('refuses a command before VERSION with EINVAL and closes the connection', async () => {
    const f = await client.call(encodeDeviceInfoRequest(7));
    expect(errnoOf(f)).toBe(22);
    expect(await client.conn.closed).toBeDefined();
  });

  it('refuses major 1 with EINVAL and closes', async () => {
    const f = await client.call(encodeVersionRequest(3, { major: 1, minor: 0 }));
    expect(errnoOf(f)).toBe(22);
    await client.conn.closed;
    expect(client.conn.open).toBe(false);
  });

  it('refuses a second VERSION with EINVAL and keeps serving', async () => {
    await client.handshake();
    expect(errnoOf(await client.handshake())).toBe(22);
    expect(
      decodeDeviceInfoReply((await client.call(encodeDeviceInfoRequest(client.nextId()))).payload).numRegions,
    ).toBe(9);
  });
});

describe('device, region and IRQ info through the device file', () => {
  it('reports PCI | RESET, 9 regions and 5 IRQ indexes', async () => {
    await client.handshake();
    const r = decodeDeviceInfoReply((await client.call(encodeDeviceInfoRequest(client.nextId()))).payload);
    expect(r).toEqual({
      argsz: 16,
      flags: VFIO_DEVICE_FLAGS_PCI | VFIO_DEVICE_FLAGS_RESET,
      numRegions: 9,
      numIrqs: 5,
    });
  });

  it('sends the needed argsz and no fd when the caps do not fit, then the memfd with the sparse areas', async () => {
    await client.handshake();
    const short = await client.call(encodeRegionInfoRequest(client.nextId(), { argsz: 32, index: 0 }));
    const s = decodeRegionInfoReply(short.payload, short.fds);
    expect(s.complete).toBe(false);
    expect(short.fds).toEqual([]);
    // QEMU's client (hw/vfio-user/device.c) refuses CAPS with a cap_offset inside the 32-byte
    // header with EINVAL, so the short reply carries no CAPS flag and cap_offset 0.
    expect(s.flags & VFIO_REGION_INFO_FLAG_CAPS).toBe(0);
    expect(s.capOffset).toBe(0);
    expect(s.argsz).toBeGreaterThan(32);
    const full = await client.call(encodeRegionInfoRequest(client.nextId(), { argsz: s.argsz, index: 0 }));
    const r = decodeRegionInfoReply(full.payload, full.fds);
    expect(r.complete).toBe(true);
    expect(r.flags & VFIO_REGION_INFO_FLAG_MMAP).toBeTruthy();
    expect(r.flags & VFIO_REGION_INFO_FLAG_CAPS).toBeTruthy();
    expect(r.capOffset).toBe(32);
    expect(r.size).toBe(BAR0_SIZE);
    expect(r.caps).toEqual([{ kind: 'sparse-mmap', areas: [MMAP_AREA] }]);
    expect(full.fds).toHaveLength(1);
    // The spec: mmap offset = region offset + area offset; the mapping shows the device's memory.
    const view = new Uint8Array(mapFd(full.fds[0], MMAP_AREA.size, r.offset + MMAP_AREA.offset));
    closeFds(full.fds);
    device.memory.bytes[MMAP_AREA.offset + 5] = 0x77;
    expect(view[5]).toBe(0x77);
  });

  it('answers an out-of-range region or IRQ index with EINVAL', async () => {
    await client.handshake();
    expect(
      errnoOf(await client.call(encodeRegionInfoRequest(client.nextId(), { argsz: 32, index: 9 }))),
    ).toBe(22);
    expect(errnoOf(await client.call(encodeIrqInfoRequest(client.nextId(), { argsz: 16, index: 5 })))).toBe(
      22,
    );
    const msi = decodeIrqInfoReply(
      (await client.call(encodeIrqInfoRequest(client.nextId(), { argsz: 16, index: 1 }))).payload,
    );
    expect(msi.count).toBe(4);
  });

  it('answers GET_REGION_IO_FDS with count 0 and no fds, as libvfio-user without ioeventfds', async () => {
    await client.handshake();
    const f = await client.call(encodeRegionIoFdsRequest(client.nextId(), { argsz: 256, index: 0 }));
    expect(f.header.command).toBe(VFIO_USER_DEVICE_GET_REGION_IO_FDS);
    expect(decodeRegionIoFdsReply(f.payload, f.fds)).toMatchObject({
      count: 0,
      subRegions: [],
      complete: true,
    });
    expect(f.fds).toEqual([]);
    expect(
      errnoOf(await client.call(encodeRegionIoFdsRequest(client.nextId(), { argsz: 256, index: 5 }))),
    ).toBe(22);
  });
});

describe('REGION_READ and REGION_WRITE', () => {
  it('reads and writes registers at the region offset', async () => {
    await ready();
    expect(await readReg(REG_ID)).toBe(DEVICE_ID_VALUE);
    expect(errnoOf(await writeReg(4, 0x1234))).toBe(0);
    expect(await readReg(4)).toBe(0x1234);
  });

  it('refuses accesses outside the region instead of landing in another one', async () => {
    await ready();
    const bad = [
      { offset: BAR0_SIZE, region: 0, count: 4 },
      { offset: BAR0_SIZE - 2, region: 0, count: 4 },
      { offset: 2 ** 40, region: 0, count: 4 },
      { offset: 0, region: 77, count: 4 },
    ];
    for (const a of bad)
      expect(errnoOf(await client.call(encodeRegionReadRequest(client.nextId(), a)))).toBe(22);
    expect(await readReg(REG_ID)).toBe(DEVICE_ID_VALUE);
  });

  it('refuses a count above max_data_xfer_size with E2BIG', async () => {
    await ready();
    const f = await client.call(
      encodeRegionReadRequest(client.nextId(), { offset: 0, region: 0, count: (1 << 20) + 1 }),
    );
    expect(errnoOf(f)).toBe(7);
  });
});

describe('DMA', () => {
  it('maps guest memory sent as an fd so that device DMA reads it directly', async () => {
    await ready();
    const guest = allocateMemfdMemory('guest', 0x10000);
    guest.bytes.set([1, 2, 3, 4], 0x3000);
    const map = await client.call(
      encodeDmaMapRequest(client.nextId(), { flags: 3, offset: 0, address: 0x100000, size: 0x10000 }),
      [guest.fd],
    );
    guest.close();
    expect(errnoOf(map)).toBe(0);
    expect(server.session?.dmaMappings).toBe(1);
    await writeReg(REG_DMA_ADDR, 0x103000);
    await writeReg(REG_DMA_LEN, 4);
    await writeReg(REG_DMA_CMD, 1);
    expect(await readReg(REG_DMA_STATUS)).toBe(1);
    expect(await readReg(MMAP_AREA.offset)).toBe(0x04030201);
  });

  it('refuses an fd smaller than the mapping, an overlap and an unaligned range', async () => {
    await ready();
    const small = allocateMemfdMemory('small', 0x1000);
    const f1 = await client.call(
      encodeDmaMapRequest(client.nextId(), { flags: 3, offset: 0, address: 0, size: 0x2000 }),
      [small.fd],
    );
    small.close();
    expect(errnoOf(f1)).toBe(22);
    expect(
      errnoOf(
        await client.call(
          encodeDmaMapRequest(client.nextId(), { flags: 3, offset: 0, address: 0, size: 0x2000 }),
        ),
      ),
    ).toBe(0);
    expect(
      errnoOf(
        await client.call(
          encodeDmaMapRequest(client.nextId(), { flags: 3, offset: 0, address: 0x1000, size: 0x2000 }),
        ),
      ),
    ).toBe(17);
    expect(
      errnoOf(
        await client.call(
          encodeDmaMapRequest(client.nextId(), { flags: 3, offset: 0, address: 0x8100, size: 0x1000 }),
        ),
      ),
    ).toBe(22);
    // type1: an unmap must not split a mapping.
    expect(
      errnoOf(
        await client.call(
          encodeDmaUnmapRequest(client.nextId(), { argsz: 24, flags: 0, address: 0, size: 0x1000 }),
        ),
      ),
    ).toBe(22);
    expect(
      errnoOf(
        await client.call(
          encodeDmaUnmapRequest(client.nextId(), {
            argsz: 24,
            flags: VFIO_DMA_UNMAP_FLAG_ALL,
            address: 0,
            size: 0,
          }),
        ),
      ),
    ).toBe(0);
    expect(server.session?.dmaMappings).toBe(0);
  });

  it('reaches memory mapped without an fd only through DMA_READ/DMA_WRITE messages', async () => {
    await ready();
    const guest = new Uint8Array(0x2000);
    guest.set([9, 8, 7, 6], 0x10);
    client.onCommand = (f) => {
      if (f.header.command === VFIO_USER_DMA_READ) {
        const a = decodeDmaReadRequest(f.payload, 'qemu');
        client.conn.send(
          encodeDmaReadReply(
            f.header.msgId,
            { ...a, data: guest.subarray(a.address - 0x200000, a.address - 0x200000 + a.count) },
            'qemu',
          ),
        );
      } else if (f.header.command === VFIO_USER_DMA_WRITE) {
        const t = decodeDmaWriteRequest(f.payload, 'qemu');
        guest.set(t.data, t.address - 0x200000);
        client.conn.send(encodeDmaWriteReply(f.header.msgId, t, 'qemu'));
      }
    };
    expect(
      errnoOf(
        await client.call(
          encodeDmaMapRequest(client.nextId(), { flags: 3, offset: 0, address: 0x200000, size: 0x2000 }),
        ),
      ),
    ).toBe(0);
    await writeReg(REG_DMA_ADDR, 0x200010);
    await writeReg(REG_DMA_LEN, 4);
    await writeReg(REG_DMA_CMD, 1);
    expect(await readReg(REG_DMA_STATUS)).toBe((0x80000000 | 14) >>> 0); // EFAULT: no fd, use readAsync
    await writeReg(REG_DMA_CMD, 2);
    await waitFor(() => device.status === 1);
    expect(await readReg(MMAP_AREA.offset)).toBe(0x06070809);
    // and back: the device writes its window into guest memory
    await writeReg(REG_DMA_ADDR, 0x200100);
    await writeReg(REG_DMA_CMD, 3);
    await waitFor(() => device.status === 1);
    expect(Array.from(guest.subarray(0x100, 0x104))).toEqual([9, 8, 7, 6]);
  });

  it('fails an asynchronous DMA the client refuses, with the client errno', async () => {
    await ready();
    client.onCommand = (f) => {
      client.conn.send(
        new Uint8Array(new Uint32Array([f.header.msgId | (f.header.command << 16), 16, 0x21, 14]).buffer),
      );
    };
    await client.call(
      encodeDmaMapRequest(client.nextId(), { flags: 3, offset: 0, address: 0, size: 0x1000 }),
    );
    await writeReg(REG_DMA_LEN, 4);
    await writeReg(REG_DMA_CMD, 2);
    await waitFor(() => device.status !== 0);
    expect(device.status).toBe((0x80000000 | 14) >>> 0); // EFAULT from the client
  });
});

describe('interrupts', () => {
  it('keeps SET_IRQS eventfds and signals them when the device raises MSI', async () => {
    await ready();
    const efds = [new Eventfd(), new Eventfd(), new Eventfd(), new Eventfd()];
    const f = await client.call(
      encodeSetIrqsRequest(client.nextId(), {
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 0,
        count: 4,
        dataType: 'eventfd',
        action: 'trigger',
      }),
      efds.map((e) => e.fd),
    );
    expect(errnoOf(f)).toBe(0);
    const got = efds[2].wait(2000);
    await writeReg(REG_DOORBELL, 2);
    expect(await got).toBe(1);
    for (const e of efds) e.close();
  });

  it('automasks INTx after one signal and delivers the held one on UNMASK', async () => {
    await ready();
    const e = new Eventfd();
    const set = await client.call(
      encodeSetIrqsRequest(client.nextId(), {
        index: VFIO_PCI_INTX_IRQ_INDEX,
        start: 0,
        count: 1,
        dataType: 'eventfd',
        action: 'trigger',
      }),
      [e.fd],
    );
    expect(errnoOf(set)).toBe(0);
    await writeReg(REG_DOORBELL, 0);
    await waitFor(() => e.read() === 1);
    await writeReg(REG_DOORBELL, 0);
    await new Promise((r) => setTimeout(r, 20));
    expect(e.read()).toBeUndefined();
    await client.call(
      encodeSetIrqsRequest(client.nextId(), {
        index: 0,
        start: 0,
        count: 1,
        dataType: 'none',
        action: 'unmask',
      }),
    );
    await waitFor(() => e.read() === 1);
    e.close();
  });

  it('refuses eventfds with DATA_NONE and a count that differs from the fds, closing them', async () => {
    await ready();
    const before = openFdCount();
    const e = new Eventfd();
    const f = await client.call(
      encodeSetIrqsRequest(client.nextId(), {
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 0,
        count: 2,
        dataType: 'eventfd',
        action: 'trigger',
      }),
      [e.fd],
    );
    expect(errnoOf(f)).toBe(22);
    e.close();
    await waitFor(() => openFdCount() === before);
  });
});

describe('reset and features', () => {
  it('resets the device on DEVICE_RESET', async () => {
    await ready();
    const before = device.resets;
    expect(errnoOf(await client.call(encodeEmptyRequest(client.nextId(), 13)))).toBe(0);
    expect(device.resets).toBe(before + 1);
  });

  it('answers the MIGRATION feature through the device file, and refuses SET on it with EINVAL', async () => {
    await ready();
    const f = await client.call(
      encodeDeviceFeatureRequest(client.nextId(), {
        flags: featureFlags(VFIO_DEVICE_FEATURE_MIGRATION, { get: true }),
        argsz: 16,
      }),
    );
    expect(Array.from(decodeDeviceFeatureReply(f.payload).data)).toEqual([1, 0, 0, 0, 0, 0, 0, 0]); // STOP_COPY
    const set = await client.call(
      encodeDeviceFeatureRequest(client.nextId(), {
        flags: featureFlags(VFIO_DEVICE_FEATURE_MIGRATION, { set: true }),
        data: new Uint8Array(8),
      }),
    );
    expect(errnoOf(set)).toBe(22);
    const unknown = await client.call(
      encodeDeviceFeatureRequest(client.nextId(), { flags: featureFlags(0x77, { get: true }), argsz: 16 }),
    );
    expect(errnoOf(unknown)).toBe(25); // ENOTTY, as vfio_ioctl_device_feature answers
  });

  it('logs DMA writes that went by message and reports them as dirty', async () => {
    await ready();
    client.onCommand = (f) => {
      const t = decodeDmaWriteRequest(f.payload, 'qemu');
      client.conn.send(encodeDmaWriteReply(f.header.msgId, t, 'qemu'));
    };
    await client.call(
      encodeDmaMapRequest(client.nextId(), { flags: 3, offset: 0, address: 0, size: 0x4000 }),
    );
    const start = await client.call(
      encodeDeviceFeatureRequest(client.nextId(), {
        flags: featureFlags(VFIO_DEVICE_FEATURE_DMA_LOGGING_START, { set: true }),
        data: encodeDmaLoggingControl({ pageSize: 4096, ranges: [{ iova: 0, length: 0x4000 }] }),
      }),
    );
    expect(errnoOf(start)).toBe(0);
    await writeReg(REG_DMA_ADDR, 0x2000);
    await writeReg(REG_DMA_LEN, 16);
    await writeReg(REG_DMA_CMD, 3);
    await waitFor(() => device.status === 1);
    const rep = await client.call(
      encodeDeviceFeatureRequest(client.nextId(), {
        flags: featureFlags(VFIO_DEVICE_FEATURE_DMA_LOGGING_REPORT, { get: true }),
        data: encodeDmaLoggingReport({ iova: 0, length: 0x4000, pageSize: 4096 }),
        argsz: 8 + 24 + 8,
      }),
    );
    expect(errnoOf(rep)).toBe(0);
    const data = decodeDeviceFeatureReply(rep.payload).data;
    expect(data[24]).toBe(0b0100);
  });
});

describe('sessions', () => {
  it('releases eventfds and mappings, resets and closes the device when the client leaves', async () => {
    await ready();
    // Both ends of the connection are open now; the session's fds come on top.
    const baseline = openFdCount();
    const e = new Eventfd();
    await client.call(
      encodeSetIrqsRequest(client.nextId(), {
        index: VFIO_PCI_MSI_IRQ_INDEX,
        start: 0,
        count: 1,
        dataType: 'eventfd',
        action: 'trigger',
      }),
      [e.fd],
    );
    e.close();
    const guest = allocateMemfdMemory('g', 0x1000);
    await client.call(
      encodeDmaMapRequest(client.nextId(), { flags: 3, offset: 0, address: 0, size: 0x1000 }),
      [guest.fd],
    );
    guest.close();
    const resets = device.resets;
    client.close();
    await server.idle();
    expect(device.resets).toBe(resets + 1);
    expect(device.closes).toBe(device.opens);
    // The client's socket, the server's socket and the server's copy of the eventfd are all gone.
    await waitFor(() => openFdCount() === baseline - 2);
  });

  it('makes a second client wait until the first one leaves, then serves it', async () => {
    await client.handshake();
    const second = await RawClient.connect(path);
    const pending = second.handshake();
    await new Promise((r) => setTimeout(r, 30));
    expect(server.waitingClients).toBe(1);
    client.close();
    expect(errnoOf(await pending)).toBe(0);
    expect(server.sessions).toBe(2);
    second.close();
  });

  it('refuses connections beyond maxPendingClients with EBUSY', async () => {
    await server.close();
    server = await serveDevice({
      socketPath: path,
      device,
      log: silentLogger,
      limits: { maxPendingClients: 0 },
    });
    const first = await RawClient.connect(path);
    await first.handshake();
    const second = await RawClient.connect(path);
    expect(errnoOf(await second.handshake())).toBe(16); // EBUSY, at once
    await second.conn.closed;
    expect(second.conn.open).toBe(false);
    first.close();
  });

  it('removes the socket file on close', async () => {
    expect(existsSync(path)).toBe(true);
    await server.close();
    expect(existsSync(path)).toBe(false);
  });
});

it('never sends REGION_READ replies for NO_REPLY requests, even failing ones', async () => {
  await ready();
  client.conn.send(
    encodeRegionReadRequest(client.nextId(), { offset: 0, region: 77, count: 4 }, { noReply: true }),
  );
  expect(await readReg(REG_ID)).toBe(DEVICE_ID_VALUE);
  expect(VFIO_USER_REGION_READ).toBe(9);
});
