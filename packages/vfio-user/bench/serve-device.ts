/**
 * The far end of the REGION_READ benchmarks, run with child_process.fork: serve a minimal core
 * PCI device (config space and one 4 KiB memfd BAR) on the path in argv[2], and answer the
 * parent's 'gc?' with what the process has spent in the garbage collector (gc-meter.ts).
 */
import { allocateDeviceMemory, ConfigSpace, PciDeviceModel } from '@vfiokit/core';
import { silentLogger } from '../src/host.js';
import { createPluginHostForServer } from '../src/server/plugin-host.js';
import { serveDevice } from '../src/server/server.js';
import { answerGcQueries } from './gc-meter.js';

const path = process.argv[2];
if (!path) throw new Error('usage: serve-device <socket path>');
const config = new ConfigSpace({
  identity: {
    vendorId: 0x1af4,
    deviceId: 0x10f0,
    subsystemVendorId: 0x1af4,
    subsystemId: 0x10f0,
    classCode: 0xff0000,
    revision: 1,
  },
});
config.defineBar({ index: 0, kind: 'mem32', size: 4096 });
const host = createPluginHostForServer({ log: silentLogger });
const device = new PciDeviceModel({
  name: 'bench0',
  config,
  bars: { 0: { memory: allocateDeviceMemory(host, 4096, 'bar0') } },
});
const server = await serveDevice({ socketPath: path, device, log: silentLogger });
process.on('disconnect', () => {
  void server.close().then(() => process.exit(0));
});
answerGcQueries();
process.send?.('ready');
