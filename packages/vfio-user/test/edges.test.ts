/**
 * Edge semantics decided against the kernel and libvfio-user (README, "Edge cases"): a 0-byte
 * REGION_READ/WRITE, a DMA_MAP of exactly a mapped range, and a header whose msg_size cannot
 * be framed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../src/host.js';
import { allocateMemfdMemory, openFdCount } from '../src/native/memory.js';
import { UnixConnection } from '../src/native/socket.js';
import { encodeDeviceInfoRequest } from '../src/protocol/device.js';
import { encodeDmaMapRequest } from '../src/protocol/dma.js';
import { decodeHeader, isErrorReply, maxMessageSize } from '../src/protocol/header.js';
import {
  decodeRegionReadReply,
  decodeRegionWriteReply,
  encodeRegionReadRequest,
  encodeRegionWriteRequest,
} from '../src/protocol/region.js';
import { encodeVersionRequest } from '../src/protocol/version.js';
import { createPluginHostForServer } from '../src/server/plugin-host.js';
import { serveDevice, type VfioUserServer } from '../src/server/server.js';
import { BAR0_SIZE, MMAP_AREA, REG_DMA_ADDR, REG_DMA_CMD, REG_DMA_LEN, TestDevice } from './device.js';
import { waitFor } from './helpers.js';
import { RawClient } from './raw-client.js';

let dir: string;
let path: string;
let device: TestDevice;
let server: VfioUserServer;
let client: RawClient;

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vfio-user-edges-'));
  path = join(dir, 'dev.sock');
  device = new TestDevice('edge0', createPluginHostForServer({ log: silentLogger }));
  server = await serveDevice({ socketPath: path, device, log: silentLogger });
  client = await RawClient.connect(path);
  await client.handshake();
});

afterEach(async () => {
  client.close();
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

const errnoOf = (f: { header: ReturnType<typeof decodeHeader> }) =>
  isErrorReply(f.header) ? f.header.errno : 0;

describe('a 0-byte REGION_READ or REGION_WRITE', () => {
  it('succeeds inside an implemented region with count 0 and no data, as read(2) of 0 bytes on a vfio-pci region', async () => {
    for (const [region, offset] of [
      [0, 0],
      [0, BAR0_SIZE - 1],
      [VFIO_PCI_CONFIG_REGION_INDEX, 0x40],
    ]) {
      const r = await client.call(encodeRegionReadRequest(client.nextId(), { offset, region, count: 0 }));
      expect(errnoOf(r)).toBe(0);
      expect(r.payload.length).toBe(16); // {offset, region, count}: the spec's reply, with no data
      expect(decodeRegionReadReply(r.payload)).toMatchObject({ offset, region, count: 0 });
      const w = await client.call(
        encodeRegionWriteRequest(client.nextId(), { offset, region, count: 0, data: new Uint8Array(0) }),
      );
      expect(errnoOf(w)).toBe(0);
      expect(decodeRegionWriteReply(w.payload)).toMatchObject({ offset, region, count: 0 });
    }
  });

  it('is EINVAL at or past the region end and in a region that is not implemented, as vfio_pci_bar_rw', async () => {
    for (const [region, offset] of [
      [0, BAR0_SIZE],
      [0, 2 ** 40],
      [3, 0], // BAR3 is not implemented
      [77, 0],
    ]) {
      const r = await client.call(encodeRegionReadRequest(client.nextId(), { offset, region, count: 0 }));
      expect(errnoOf(r)).toBe(22);
    }
  });
});

describe('a DMA_MAP of exactly a mapped range', () => {
  it('is EEXIST, as the kernel and the spec say, and the first mapping keeps serving', async () => {
    const guest = allocateMemfdMemory('guest', 0x4000);
    const before = openFdCount();
    try {
      guest.bytes.fill(0x3c, 0, 0x2000);
      const req = { flags: 3, offset: 0, address: 0x10000, size: 0x4000 };
      expect(errnoOf(await client.call(encodeDmaMapRequest(client.nextId(), req), [guest.fd]))).toBe(0);
      const again = await client.call(encodeDmaMapRequest(client.nextId(), req), [guest.fd]);
      expect(errnoOf(again)).toBe(17);
      // And without an fd, too: the range is taken either way.
      expect(errnoOf(await client.call(encodeDmaMapRequest(client.nextId(), req)))).toBe(17);
      expect(server.session?.dmaMappings).toBe(1);
      // The device still reads the first mapping (BAR0 memory receives 0x3c bytes).
      const cmd = new Uint8Array([0x06, 0]);
      await client.call(
        encodeRegionWriteRequest(client.nextId(), {
          offset: 4,
          region: VFIO_PCI_CONFIG_REGION_INDEX,
          count: 2,
          data: cmd,
        }),
      );
      for (const [reg, v] of [
        [REG_DMA_ADDR, 0x10000],
        [REG_DMA_LEN, 0x100],
        [REG_DMA_CMD, 1],
      ]) {
        const data = new Uint8Array(new Uint32Array([v]).buffer);
        expect(
          errnoOf(
            await client.call(
              encodeRegionWriteRequest(client.nextId(), { offset: reg, region: 0, count: 4, data }),
            ),
          ),
        ).toBe(0);
      }
      expect(device.status).toBe(1);
      expect(device.memory.bytes[MMAP_AREA.offset]).toBe(0x3c);
      // The fds that came with the refused maps are closed.
      await waitFor(() => openFdCount() === before);
    } finally {
      guest.close();
    }
  });
});

describe('a header with an impossible msg_size', () => {
  it.each([
    ['below the 16-byte header', 8, 22],
    ['above the largest message', maxMessageSize() + 1, 7],
  ])('%s gets an error reply naming its msg_id, then the connection closes', async (_what, size, errno) => {
    const conn = await UnixConnection.connect(path, { timeoutMs: 2000 });
    const got: Uint8Array[] = [];
    const closed = new Promise<void>((resolve) => {
      conn.start({ onData: (chunk) => void got.push(chunk.slice()), onClose: () => resolve() });
    });
    // The running session belongs to `client`; end it so that this connection is served.
    client.close();
    conn.send(encodeVersionRequest(1, { major: 0, minor: 2, capabilities: {} }));
    const bad = encodeDeviceInfoRequest(0x4242);
    new DataView(bad.buffer).setUint32(4, size, true);
    conn.send(bad);
    await closed;
    const bytes = new Uint8Array(got.reduce((n, c) => n + c.length, 0));
    let at = 0;
    for (const c of got) {
      bytes.set(c, at);
      at += c.length;
    }
    const version = decodeHeader(bytes);
    const reply = decodeHeader(bytes.subarray(version.size));
    expect(reply).toMatchObject({ msgId: 0x4242, command: 4, size: 16, errno });
    expect(isErrorReply(reply)).toBe(true);
    await server.idle();
    // The server serves the next client.
    const next = await RawClient.connect(path);
    expect(errnoOf(await next.handshake())).toBe(0);
    next.close();
  });
});
