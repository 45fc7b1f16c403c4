/**
 * The connect deadline measures the connect, not the start of the client I/O worker: the first
 * connection of a process starts the worker (from source it compiles its modules, seconds on a
 * loaded machine), and that must not eat into connectTimeoutMs. This file runs alone in its
 * module scope, so the connect below is the one that starts the worker.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { connectVfioUser } from '../src/client/client-device.js';
import { ServerProcess } from './server-process.js';

let srv: ServerProcess;
beforeAll(async () => {
  srv = await ServerProcess.start(1);
}, 30_000);
afterAll(() => srv.stop());

it('connects with a 50 ms deadline even when the connect has to start the I/O worker first', async () => {
  const dev = await connectVfioUser(srv.paths[0], { connectTimeoutMs: 50 });
  expect(dev.info().numRegions).toBe(9);
  dev.disconnect();
});
