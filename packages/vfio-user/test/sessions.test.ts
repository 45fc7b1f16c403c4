import { fork } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createTestHost } from '@vfiokit/conformance';
import { MigState, VFIO_PCI_MSI_IRQ_INDEX } from '@vfiokit/core';
import { VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE } from '@vfiokit/core/abi';
import { DeviceFile } from '@vfiokit/core/host';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectVfioUser } from '../src/client/client-device.js';
import { silentLogger } from '../src/host.js';
import { allocateMemfdMemory, closeFds, openFdCount } from '../src/native/memory.js';
import { decodeDeviceInfoReply, encodeDeviceInfoRequest } from '../src/protocol/device.js';
import {
  decodeDeviceFeatureReply,
  decodeMigStateData,
  encodeDeviceFeatureRequest,
  encodeMigStateData,
  featureFlags,
} from '../src/protocol/feature.js';
import { createPluginHostForServer } from '../src/server/plugin-host.js';
import { serveDevice } from '../src/server/server.js';
import { TestDevice } from './device.js';
import { waitFor } from './helpers.js';
import { RawClient } from './raw-client.js';
import { ServerProcess } from './server-process.js';

const here = dirname(fileURLToPath(import.meta.url));

/**
 * The server process's open-fd count once it stops changing: a session that has just ended may
 * still be closing its socket (libuv closes handles on a later loop turn), which counted one fd
 * too many in the baseline now and then.
 */
async function settledFds(srv: ServerProcess): Promise<number> {
  let last = await srv.fds();
  for (let i = 0; i < 100; i++) {
    await new Promise((r) => setTimeout(r, 20));
    const now = await srv.fds();
    if (now === last) return now;
    last = now;
  }
  throw new Error(`the server's fd count kept changing for 2 s (last ${last})`);
}

describe('sessions with a server in another process', () => {
  let srv: ServerProcess;
  beforeAll(async () => {
    srv = await ServerProcess.start(1);
  }, 30_000);
  afterAll(() => srv?.stop());

  it('leaks no fd on either side over 1,000 connect/disconnect cycles', async () => {
    // Warm up: the client's modules and the addon load once per process.
    (await connectVfioUser(srv.paths[0])).disconnect();
    await srv.idle();
    const clientBefore = openFdCount();
    const serverBefore = await settledFds(srv);
    const guest = allocateMemfdMemory('guest', 0x10000);
    for (let i = 0; i < 1000; i++) {
      const dev = await connectVfioUser(srv.paths[0], i % 50 === 0 ? { guestMemory: guest } : {});
      if (i % 50 === 0) {
        // Every 50th session also maps guest memory and sets up MSI eventfds, then just leaves.
        const host = createTestHost();
        const file = new DeviceFile(dev, host);
        file.open();
        file.setIrqs({
          action: 'trigger',
          index: VFIO_PCI_MSI_IRQ_INDEX,
          start: 0,
          count: 4,
          data: 'eventfd',
          triggers: [0, 1, 2, 3].map(() => host.resolveEventfd(host.createEventfd())),
        });
      }
      dev.disconnect();
    }
    guest.close();
    await srv.idle();
    await waitFor(() => openFdCount() === clientBefore - 0, 5000);
    expect(openFdCount()).toBe(clientBefore);
    // A leak shows as more fds than before (one per leaked session at least, of 1,000); one fewer
    // is a baseline taken while a socket of the warm-up session was still closing on a loaded
    // machine (seen once: 29 after, 30 before), not a leak.
    expect(await settledFds(srv)).toBeLessThanOrEqual(serverBefore);
    const stats = (await srv.stats())[0];
    expect(stats.sessions).toBeGreaterThanOrEqual(1001);
    expect(stats.opens).toBe(stats.closes);
    expect(stats.active).toBe(false);
  }, 120_000);
});

describe('a client that dies mid-session', () => {
  it('has its mappings and eventfds released, and the next client is served', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-user-die-'));
    const path = join(dir, 'dev.sock');
    const device = new TestDevice('dying', createPluginHostForServer({ log: silentLogger }));
    const server = await serveDevice({ socketPath: path, device, log: silentLogger });
    let child: ReturnType<typeof fork> | undefined;
    try {
      const before = openFdCount();
      child = fork(join(here, 'fixtures', 'dying-client.ts'), [path], {
        execArgv: ['--import', 'tsx', '--conditions=@vfiokit/source'],
        stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
      });
      const started = child;
      await new Promise<void>((resolve, reject) => {
        started.once('message', () => resolve());
        started.once('exit', (code) => reject(new Error(`the client exited early with ${code}`)));
      });
      expect(server.session?.dmaMappings).toBe(2);
      // fork's IPC channel, the session's socket, the MSI eventfd the device file keeps and the
      // dup the session keeps to hand it over again if the vector block grows (server/irqs.ts).
      expect(openFdCount()).toBe(before + 4);
      const resets = device.resets;
      child.kill('SIGKILL');
      await server.idle();
      expect(device.resets).toBe(resets + 1);
      expect(device.closes).toBe(device.opens);
      await waitFor(() => openFdCount() === before);
      const next = await RawClient.connect(path);
      await next.handshake();
      const info = decodeDeviceInfoReply((await next.call(encodeDeviceInfoRequest(next.nextId()))).payload);
      expect(info.numRegions).toBe(9);
      expect(server.session?.dmaMappings).toBe(0);
      next.close();
    } finally {
      child?.kill('SIGKILL');
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('a client that leaves the device stopped', () => {
  it('leaves it RUNNING for the next one, reset or not (libvfio-user do_device_reset at VFU_RESET_LOST_CONN)', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'vfio-user-mig-'));
    const path = join(dir, 'dev.sock');
    const infos: string[] = [];
    const log = { ...silentLogger, info: (m: string) => void infos.push(m) };
    const device = new TestDevice('stopped', createPluginHostForServer({ log: silentLogger }), {
      resettable: false,
    });
    const server = await serveDevice({ socketPath: path, device, log });
    /** MIG_DEVICE_STATE SET over the socket; the reply's errno (0 for success). */
    const setState = async (client: RawClient, state: number) => {
      const reply = await client.call(
        encodeDeviceFeatureRequest(client.nextId(), {
          flags: featureFlags(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, { set: true }),
          data: encodeMigStateData(state),
        }),
      );
      closeFds(reply.fds);
      return reply.header.errno;
    };
    /** MIG_DEVICE_STATE GET over the socket: the state the server reports. */
    const getState = async (client: RawClient) => {
      const reply = await client.call(
        encodeDeviceFeatureRequest(client.nextId(), {
          flags: featureFlags(VFIO_DEVICE_FEATURE_MIG_DEVICE_STATE, { get: true }),
          argsz: 16,
          data: new Uint8Array(8),
        }),
      );
      expect(reply.header.errno).toBe(0);
      return decodeMigStateData(decodeDeviceFeatureReply(reply.payload).data).deviceState;
    };
    try {
      const first = await RawClient.connect(path);
      await first.handshake();
      expect(await setState(first, MigState.STOP)).toBe(0);
      expect(await setState(first, MigState.STOP_COPY)).toBe(0);
      first.close();
      await server.idle();
      expect(device.resets).toBe(0);
      const next = await RawClient.connect(path);
      await next.handshake();
      expect(await getState(next)).toBe(MigState.RUNNING);
      expect(
        infos.filter((m) => m.startsWith('session ended, migration state back to RUNNING: ')),
      ).toHaveLength(1);
      next.close();
      await server.idle();
    } finally {
      await server.close();
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});
