/**
 * Our side of the mtty differential: @vfiokit/sample-mtty's mtty-2 behind core's DeviceFile,
 * asked exactly what the kernel's mtty was asked in the guest (the same checks, runs and seed).
 */
import {
  type ConformanceOptions,
  type ConformanceReport,
  createTestHost,
  runCheck,
  selectChecks,
} from '@vfiokit/conformance';
import { CONTRACT_VERSION } from '@vfiokit/core';
import { DeviceFile } from '@vfiokit/core/host';
import { runSide, type SideRun } from '@vfiokit/linux-vfio';
import plugin from '@vfiokit/sample-mtty';

const TYPE = 'mtty-2';

export function runOurMtty(label: string, opts: ConformanceOptions): Promise<SideRun> {
  const host = createTestHost();
  const [parent] = plugin.probe({ clock: host.clock, log: host.log, options: {} });
  const type = parent.types().find((t) => t.id === TYPE);
  if (!type) throw new Error(`@vfiokit/sample-mtty has no ${TYPE} type.`);
  const suite = async (o: ConformanceOptions): Promise<ConformanceReport> => {
    const results = [];
    for (const check of selectChecks(o)) results.push(await runCheck(plugin, parent, type, check, o));
    return {
      plugin: plugin.name,
      contractVersion: CONTRACT_VERSION,
      devices: [{ device: { plugin: plugin.name, parent: parent.name, type: type.id }, results }],
      failures: results.flatMap((r) => r.failures),
      passed: results.filter((r) => r.status === 'passed').length,
      failed: results.filter((r) => r.status === 'failed').length,
      skipped: results.filter((r) => r.status === 'skipped').length,
      durationMs: results.reduce((t, r) => t + r.durationMs, 0),
    };
  };
  return runSide(
    label,
    () => {
      const instance = parent.create(TYPE, '83b8f4f2-509f-382f-3c1e-e6bfe0fa2001');
      const file = new DeviceFile(instance.device, createTestHost());
      file.open();
      return {
        file,
        close: () => {
          file.close();
          parent.remove(instance.uuid);
        },
      };
    },
    suite,
    opts,
  );
}
