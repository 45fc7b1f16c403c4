/**
 * Running guest drivers: each driver on each probed device it matches, one after the other, and
 * what came of it as a DriverRun. A driver that throws, rejects, leaves a Promise rejected that it
 * never awaited, or returns no result fails its own run and nothing else (plugin-rejections.ts).
 */
import type { GuestDriver, GuestView, PciAddress, ProbedDevice } from '@vfiokit/core';
import { reasonText, watchRejections } from './plugin-rejections.js';

export interface DriverRun {
  slot: PciAddress;
  driver: string;
  ok: boolean;
  summary: string;
  facts?: Record<string, unknown>;
  error?: string;
}

/** Run each driver on each of `probed` it matches, one after the other; results per device. */
export async function runGuestDrivers(
  guest: GuestView,
  probed: readonly ProbedDevice[],
  drivers: readonly GuestDriver[],
): Promise<readonly DriverRun[]> {
  const runs: DriverRun[] = [];
  for (const device of probed) {
    for (const driver of drivers) {
      let matches = false;
      try {
        matches = driver.matches(device);
      } catch (err) {
        runs.push(failedRun(device, driver, err, 'matches() threw'));
        continue;
      }
      if (!matches) continue;
      // A driver's rejected Promise (awaited or left behind) is that driver's failure, never the process's.
      const { result, rejections } = await watchRejections(() => driver.run(guest, device));
      if (result.status === 'rejected') runs.push(failedRun(device, driver, result.reason, 'run() threw'));
      else if (rejections.length > 0)
        runs.push(
          failedRun(
            device,
            driver,
            rejections.map(reasonText).join('; '),
            `run() left ${rejections.length === 1 ? 'a Promise' : `${rejections.length} Promises`} rejected that it never awaited`,
          ),
        );
      else if (typeof result.value !== 'object' || result.value === null)
        runs.push(failedRun(device, driver, `it returned ${String(result.value)}`, 'run() gave no result'));
      else {
        const r = result.value;
        runs.push({
          slot: device.address,
          driver: driver.name,
          ok: r.ok,
          summary: r.summary,
          ...(r.facts !== undefined ? { facts: { ...r.facts } } : {}),
        });
      }
    }
  }
  return runs;
}

function failedRun(device: ProbedDevice, driver: GuestDriver, err: unknown, what: string): DriverRun {
  const message = err instanceof Error ? err.message : String(err);
  return {
    slot: device.address,
    driver: driver.name,
    ok: false,
    summary: `${driver.name}: ${what}`,
    error: message,
  };
}
