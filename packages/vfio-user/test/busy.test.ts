/**
 * One client at a time, with a clear outcome for the next: a connection that arrives while a
 * session runs is served if the session ends within pendingTimeoutMs, else its VERSION gets
 * EBUSY (QEMU then reports "version reply: Device or resource busy" instead of timing out).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Logger, VFIO_PCI_CONFIG_REGION_INDEX } from '@vfiokit/core';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { silentLogger } from '../src/host.js';
import { openFdCount } from '../src/native/memory.js';
import type { Frame } from '../src/protocol/framing.js';
import { isErrorReply } from '../src/protocol/header.js';
import { encodeRegionReadRequest } from '../src/protocol/region.js';
import { createPluginHostForServer } from '../src/server/plugin-host.js';
import { serveDevice, type VfioUserServer } from '../src/server/server.js';
import { TestDevice } from './device.js';
import { waitFor } from './helpers.js';
import { RawClient } from './raw-client.js';

const errnoOf = (f: Frame) => (isErrorReply(f.header) ? f.header.errno : 0);

let dir: string;
let path: string;
let server: VfioUserServer;
const warnings: string[] = [];

beforeEach(async () => {
  dir = mkdtempSync(join(tmpdir(), 'vfio-user-busy-'));
  path = join(dir, 'dev.sock');
  warnings.length = 0;
  const log: Logger = { ...silentLogger, warn: (m) => void warnings.push(m) };
  const device = new TestDevice('busy', createPluginHostForServer({ log: silentLogger }));
  server = await serveDevice({ socketPath: path, device, log, limits: { pendingTimeoutMs: 300 } });
});
afterEach(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});

it('answers a second client EBUSY when the session outlasts pendingTimeoutMs, and keeps serving the first', async () => {
  const fds = openFdCount();
  const first = await RawClient.connect(path);
  expect(errnoOf(await first.handshake())).toBe(0);
  const second = await RawClient.connect(path);
  const t0 = Date.now();
  const reply = await second.handshake();
  expect(errnoOf(reply)).toBe(16); // EBUSY
  expect(reply.header.msgId).toBe(1);
  expect(Date.now() - t0).toBeGreaterThanOrEqual(250);
  await second.conn.closed;
  expect(warnings.join('\n')).toMatch(/refused with EBUSY: one client is served at a time/);
  const r = await first.call(
    encodeRegionReadRequest(first.nextId(), { offset: 0, region: VFIO_PCI_CONFIG_REGION_INDEX, count: 4 }),
  );
  expect(errnoOf(r)).toBe(0);
  first.close();
  await server.idle();
  expect(server.sessions).toBe(1);
  await waitFor(() => openFdCount() === fds);
});

it('serves the waiting client when the first one dies within pendingTimeoutMs', async () => {
  const first = await RawClient.connect(path);
  await first.handshake();
  const second = await RawClient.connect(path);
  const pending = second.handshake();
  setTimeout(() => first.conn.socket.close(), 50); // gone without a word, as a killed QEMU
  expect(errnoOf(await pending)).toBe(0);
  expect(server.sessions).toBe(2);
  expect(warnings).toEqual([]);
  second.close();
});
