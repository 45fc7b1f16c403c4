/**
 * The connect deadline measures the connect alone: the first connection of a process also
 * loads the client's modules and the native addon (from source it compiles them, seconds on a
 * loaded machine), and that must not eat into connectTimeoutMs. This file runs alone in its
 * module scope, so the connect below is the process's first.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectVfioUser } from '../src/client/client-device.js';
import { ServerProcess } from './server-process.js';

let srv: ServerProcess;
beforeAll(async () => {
  srv = await ServerProcess.start(1);
}, 30_000);
afterAll(() => srv.stop());

it('connects with a 50 ms deadline even as the first connection of the process', async () => {
  const dev = await connectVfioUser(srv.paths[0], { connectTimeoutMs: 50 });
  expect(dev.info().numRegions).toBe(9);
  dev.disconnect();
});
