/**
 * What a guest suite is: boots (one per plugin configuration), each with the devices
 * `vfiokit serve` gives to QEMU's vfio-user-pci, what goes into the guest's initramfs, and the
 * checks that run in one boot. A check has a guest part (a shell script the guest's /init runs
 * under a timeout; exit 0 passes, 77 skips, anything else fails), a host part (run after the
 * guest powered off, while the servers still serve, with everything the boot left behind), or
 * both: the host part then runs only when the guest part passed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PACKAGE_DIR } from './env.js';
import { shellQuote } from './initramfs/build.js';

/** One device served by `vfiokit serve` and attached to QEMU with `-device vfio-user-pci`. */
export interface ServedDevice {
  /** The name checks use: `$VFK_DEV_<id>` in the guest holds its PCI address (0000:00:05.0). */
  readonly id: string;
  /** `<plugin>:<type>[:uuid]`, as `vfiokit serve --device` takes it. */
  readonly device: string;
  /** The guest slot, `05.0` (bus 0). */
  readonly addr: string;
  /** `--plugin-option key=value` items. */
  readonly pluginOptions?: readonly string[];
  /** More properties of QEMU's vfio-user-pci device (merged into its JSON). */
  readonly qemuProperties?: Readonly<Record<string, unknown>>;
  /** More `vfiokit serve` arguments; `{artifacts}` stands for the boot's artifact directory. */
  readonly serveArgs?: readonly string[];
  /**
   * Devices of a boot with the same `server` are served by one `vfiokit serve` process (one
   * `--socket --device` pair each), so they are mdevs of one parent; they must then have the
   * same plugin options and serve arguments. Without it, each device has its own server.
   */
  readonly server?: string;
}

/** Another guest of the boot, started with the boot's own and running at the same time. */
export interface CompanionGuest {
  /** `b`: its logs are `<name>-console.log`, `<name>-results.log`... in the boot's report folder. */
  readonly name: string;
  /** The ids of the devices its QEMU attaches. */
  readonly attach: readonly string[];
}

/** A file for the guest: its path inside the initramfs and where its bytes come from. */
export type GuestFile =
  | { readonly path: string; readonly data: string | Uint8Array; readonly mode?: number }
  /** A host file; `withLibraries` adds the shared libraries an ELF executable needs (DT_NEEDED). */
  | { readonly path: string; readonly from: string; readonly mode?: number; readonly withLibraries?: boolean }
  /** A host directory, copied whole. */
  | { readonly path: string; readonly tree: string };

export interface GuestCheck {
  /** Shown in JUnit and on the console: `8250_pci binds every port at its BAR`. */
  readonly name: string;
  /** Shell run in the guest after /vfk/lib.sh (see guest/lib.sh for pass/fail/skip/fact/dev). */
  readonly script?: string;
  /** Seconds the guest part may take (default 60). */
  readonly timeoutSec?: number;
  /** Runs on the host after the guest: throw (or return a failure text) to fail, return a skip to skip. */
  readonly host?: (ctx: HostCheckContext) => Promise<HostCheckResult> | HostCheckResult;
}

/** What a host part returns: undefined (pass), or a note, a failure or a skip with its reason. */
export type HostCheckResult =
  | undefined
  | { readonly note?: string; readonly fail?: string; readonly skip?: string };

/** What a guest part reported. */
export interface GuestCheckOutput {
  /** The lines it printed. */
  readonly lines: readonly string[];
  /** Its exit status; undefined when the guest never finished it. */
  readonly status: number | undefined;
  readonly ms: number | undefined;
  /** Its `key=value` lines. */
  readonly facts: Readonly<Record<string, string>>;
}

export interface HostCheckContext {
  readonly boot: GuestBoot;
  /** This check's guest part, when it has one. */
  readonly guest: GuestCheckOutput | undefined;
  /** Another check's guest part, by name. */
  output(check: string): GuestCheckOutput | undefined;
  /** What `vfiokit serve` printed for a device so far. */
  serverLog(deviceId: string): string;
  /** The socket a device is served on (a client may attach now: QEMU has left). */
  socket(deviceId: string): string;
  /** QEMU's stderr (warnings), its trace log (`qemuTrace` events), the guest console and dmesg. */
  readonly qemuLog: string;
  readonly qemuTrace: string;
  readonly console: string;
  readonly dmesg: string;
  /** The repository root (plugins resolve from it; ../shared is beside it). */
  readonly root: string;
  /** This boot's report folder (reports/guest/<suite>/<boot>), and the guest reports' root (reports/guest). */
  readonly artifacts: string;
  readonly reportsDir: string;
  /** A companion guest of the boot (GuestBoot.companions), started with the boot's own guest. */
  companion(name: string): ExtraGuest;
  /** Answer the guests waiting for `name` (lib.sh's `await_host <name>`), now and later. */
  release(name: string): void;
  /**
   * Boot this boot's guest again, in another QEMU attached to the same served devices (the
   * servers still run): its console, results and trace go to `<name>-*.log` in the boot's
   * report folder. For checks of what a server does across clients (a QEMU killed in the
   * middle of I/O, a second QEMU while one is attached). Killed when the boot ends, if still up.
   */
  startGuest(name: string, opts?: { readonly timeoutSec?: number }): ExtraGuest;
}

/** A QEMU that a host check started with startGuest(). */
export interface ExtraGuest {
  readonly pid: number | undefined;
  /** Resolves when QEMU exits: its status and everything it printed. */
  readonly done: Promise<{
    code: number | null;
    signal: NodeJS.Signals | null;
    timedOut: boolean;
    stderr: string;
  }>;
  /** SIGKILL, as a crash would. */
  kill(): void;
  /** The guest's results UART so far, as the lines /init wrote. */
  results(): string;
  /** The guest's console so far. */
  console(): string;
}

/** What a boot's `prepare` gets: where downloads and builds are cached, and a log. */
export interface PrepareContext {
  /** Outlives the run (VFIOKIT_GUEST_CACHE or ~/.cache/vfiokit-guest). */
  readonly cacheDir: string;
  /** This boot's private scratch directory, removed after the boot. */
  readonly workDir: string;
  /** The repository root. */
  readonly root: string;
  /** The guest kernel's release (`6.12.118+deb12-amd64`). */
  readonly kernelRelease: string;
  readonly log: (line: string) => void;
}

export interface GuestBoot {
  /** `mtty-2`: unique within the suite; the JUnit suite is `<suite>/<boot>`. */
  readonly name: string;
  readonly devices: readonly ServedDevice[];
  /** The ids of the devices the boot's own QEMU attaches (default: all of them). */
  readonly attach?: readonly string[];
  /**
   * More guests that boot the same image at the same time, each in its own QEMU attached to its
   * devices. They and the boot's guest meet through the host (lib.sh's `meet`); host checks
   * reach them with `companion(name)`. The boot's host checks run once its own guest is done.
   */
  readonly companions?: readonly CompanionGuest[];
  readonly checks: readonly GuestCheck[];
  /** More shell variables for every check of the boot. */
  readonly env?: Readonly<Record<string, string>>;
  /** Kernel modules to load at boot, by name; their dependencies come from modules.dep. */
  readonly modules?: readonly string[];
  readonly files?: readonly GuestFile[];
  /** Runs on the host before the initramfs is built; its files join `files` (a module built against the guest kernel, say). */
  readonly prepare?: (ctx: PrepareContext) => Promise<readonly GuestFile[]>;
  /** More kernel command-line words. */
  readonly append?: readonly string[];
  /** Guest RAM in MiB (default 512) and vCPUs (default 1). */
  readonly memoryMiB?: number;
  readonly smp?: number;
  /** QEMU trace events to record (`vfio_region_read`); the log reaches host checks as `qemuTrace`. */
  readonly qemuTrace?: readonly string[];
  /** More QEMU arguments. */
  readonly qemuArgs?: readonly string[];
  /**
   * Why this boot cannot run on this machine (a fixture of ../shared is absent), or undefined:
   * its checks are then reported as skipped with that reason.
   */
  readonly unavailable?: (root: string) => string | undefined;
  /** Seconds the whole boot may take before QEMU is killed (default: the checks' timeouts + 60). */
  readonly timeoutSec?: number;
}

export interface GuestSuite {
  /** `sample-mtty`: what `--suite` selects. */
  readonly name: string;
  readonly boots: readonly GuestBoot[];
}

export function defineSuite(suite: GuestSuite): GuestSuite {
  const seen = new Set<string>();
  for (const boot of suite.boots) {
    if (seen.has(boot.name))
      throw new Error(`guest suite ${suite.name}: two boots are named "${boot.name}".`);
    seen.add(boot.name);
    const ids = new Set<string>();
    for (const d of boot.devices) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(d.id))
        throw new Error(`guest suite ${suite.name}/${boot.name}: device id "${d.id}" is not a shell name.`);
      if (ids.has(d.id))
        throw new Error(`guest suite ${suite.name}/${boot.name}: two devices are "${d.id}".`);
      ids.add(d.id);
      if (!/^[0-9a-f]{1,2}\.[0-7]$/.test(d.addr))
        throw new Error(`guest suite ${suite.name}/${boot.name}: slot "${d.addr}" is not like 05.0.`);
    }
    const where = `guest suite ${suite.name}/${boot.name}`;
    for (const id of [...(boot.attach ?? []), ...(boot.companions ?? []).flatMap((c) => c.attach)])
      if (!ids.has(id)) throw new Error(`${where}: it attaches "${id}", which is not one of its devices.`);
    const guests = new Set<string>();
    for (const c of boot.companions ?? []) {
      if (!/^[a-z][a-z0-9-]*$/.test(c.name) || guests.has(c.name))
        throw new Error(`${where}: companion "${c.name}" is not a unique lower-case name.`);
      guests.add(c.name);
    }
    const groups = new Map<string, ServedDevice>();
    for (const d of boot.devices) {
      if (d.server === undefined) continue;
      const first = groups.get(d.server);
      if (!first) groups.set(d.server, d);
      else if (
        JSON.stringify([first.pluginOptions ?? [], first.serveArgs ?? []]) !==
        JSON.stringify([d.pluginOptions ?? [], d.serveArgs ?? []])
      )
        throw new Error(
          `${where}: devices "${first.id}" and "${d.id}" share server "${d.server}" but not their plugin options and serve arguments.`,
        );
    }
    const names = new Set<string>();
    for (const c of boot.checks) {
      if (names.has(c.name))
        throw new Error(`guest suite ${suite.name}/${boot.name}: two checks are "${c.name}".`);
      if (/[\r\n]/.test(c.name))
        throw new Error(`guest suite ${suite.name}/${boot.name}: a check name has a line break.`);
      if (c.script === undefined && c.host === undefined)
        throw new Error(
          `guest suite ${suite.name}/${boot.name}: check "${c.name}" has neither a script nor a host part.`,
        );
      names.add(c.name);
    }
  }
  return suite;
}

/** The guest's PCI address of a slot: `05.0` → `0000:00:05.0`. */
export function guestAddress(addr: string): string {
  const [dev, fn] = addr.split('.');
  return `0000:00:${dev.padStart(2, '0')}.${fn}`;
}

/**
 * A check script from the package's guest/checks folder, after `vars` as shell assignments:
 * `checkScript('sample-mtty/loopback.sh', { BAUD: '9600' })`.
 */
export function checkScript(file: string, vars: Readonly<Record<string, string | number>> = {}): string {
  const text = readFileSync(join(PACKAGE_DIR, 'guest', 'checks', file), 'utf8');
  const assigns = Object.entries(vars)
    .map(([k, v]) => {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(k)) throw new Error(`check variable "${k}" is not a shell name.`);
      return `${k}=${shellQuote(String(v))}\n`;
    })
    .join('');
  return `${assigns}${text}`;
}
