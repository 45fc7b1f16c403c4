/**
 * The conformance suite over vfio-user sockets: `vfiokit serve` serves three mtty devices in
 * three processes, and a plugin loaded by the VMM's loader creates its instances as clients of
 * them. Every check of the suite runs unchanged against the served devices.
 */
import { formatReport, runConformance } from '@vfiokit/conformance';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadPlugin } from '../src/loader/index.js';
import { MTTY, ServeProcess } from './vfio-user-fixtures.js';

const servers: ServeProcess[] = [];

beforeAll(async () => {
  servers.push(...(await Promise.all([1, 2, 3].map(() => ServeProcess.start(`${MTTY}:mtty-1`)))));
}, 90_000);

afterAll(async () => {
  await Promise.all(servers.map((s) => s.kill()));
});

it('passes the conformance suite against mtty devices served by vfiokit serve', async () => {
  const { plugin } = await loadPlugin('./test/fixtures/plugins/vfio-user-sockets.mjs', {
    cwd: new URL('..', import.meta.url).pathname,
  });
  const report = await runConformance(plugin, {
    numRuns: 30,
    seed: 7,
    pluginOptions: { sockets: servers.map((s) => s.socketPath) },
  });
  if (report.failed > 0) throw new Error(formatReport(report));
  expect(report.failed).toBe(0);
  expect(report.skipped).toBe(0);
  const ran = report.devices.flatMap((d) => d.results.map((r) => r.check));
  // Interrupts through eventfds, mmap of memfd regions and migration all crossed the socket.
  expect(ran).toEqual(expect.arrayContaining(['irq.trigger', 'region.mmap', 'migration.save-resume']));
  for (const s of servers) expect(s.stderr).toBe('');
}, 180_000);
