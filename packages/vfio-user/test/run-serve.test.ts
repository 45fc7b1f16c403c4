import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import { silentLogger } from '../src/host.js';
import { decodeDeviceInfoReply, encodeDeviceInfoRequest } from '../src/protocol/device.js';
import { createPluginHostForServer } from '../src/server/plugin-host.js';
import { runServe } from '../src/server/run-serve.js';
import { TestDevice } from './device.js';
import { waitFor } from './helpers.js';
import { RawClient } from './raw-client.js';

it('runServe serves until stopped, then ends the session and removes the socket', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'vfio-user-run-'));
  const socketPath = join(dir, 'dev.sock');
  const device = new TestDevice('run0', createPluginHostForServer({ log: silentLogger }));
  const stop = new AbortController();
  const done = runServe({ socketPath, device, log: silentLogger, signal: stop.signal });
  await waitFor(() => existsSync(socketPath));
  const client = await RawClient.connect(socketPath);
  await client.handshake();
  expect(
    decodeDeviceInfoReply((await client.call(encodeDeviceInfoRequest(client.nextId()))).payload).numIrqs,
  ).toBe(5);
  stop.abort();
  await done;
  await client.conn.closed;
  expect(existsSync(socketPath)).toBe(false);
  expect(device.closes).toBe(device.opens);
  rmSync(dir, { recursive: true, force: true });
});
