/**
 * The conformance suite, unchanged, over the socket: every instance a check creates is a
 * VfioUserClientDevice attached to a TestDevice served by another process. The parent hands out
 * the sockets of that process as its capacity; removing an instance disconnects, and the server
 * releases, resets and serves the next client on the same socket.
 */

import { describeConformance } from '@vfiokit/conformance';
import { definePlugin, MdevParent, type VfioDevice } from '@vfiokit/core';
import { afterAll } from 'vitest';
import { connectVfioUserSync, type VfioUserClientDevice } from '../src/client/client-device.js';
import { ServerProcess } from './server-process.js';

const srv = await ServerProcess.start(3);
afterAll(() => srv.stop());

const free = [...srv.paths];
const pathOf = new Map<VfioDevice, string>();

const parent = new MdevParent({
  name: 'vfio-user',
  driver: 'vfio-user',
  types: [{ name: 'test-device', description: 'a core PCI device served over vfio-user' }],
  capacity: free.length,
  create: (_type, uuid) => {
    const path = free.shift()!;
    try {
      const device = connectVfioUserSync(path, { name: uuid });
      pathOf.set(device, path);
      return device;
    } catch (err) {
      free.push(path);
      throw err;
    }
  },
  destroy: (instance) => {
    (instance.device as VfioUserClientDevice).disconnect();
    const path = pathOf.get(instance.device);
    pathOf.delete(instance.device);
    if (path) free.push(path);
  },
});

const plugin = definePlugin({
  name: 'vfio-user-socket',
  description: 'TestDevice instances reached through VfioUserClientDevice',
  probe: () => [parent],
});

await describeConformance(plugin, { numRuns: 50, seed: 4 });
