/**
 * The data model of the suite: checks as data, the failures they record and the report a run
 * produces. A check is `{ id, title, run(ctx) }`; it records failures through its context and
 * keeps going, so one run names every problem it finds, not just the first.
 */
import type { MdevInstance, MdevTypeInfo, ParentDevice, VfioPlugin } from '@vfiokit/core';
import type { DeviceFile } from '@vfiokit/core/host';
import type { CountingTrigger, TestHost } from './host.js';

/** Which device a result is about: the plugin, the parent, the mdev type and the instance UUID. */
export interface DeviceLabel {
  readonly plugin: string;
  readonly parent: string;
  readonly type: string;
  /** The instance the check created; absent when no instance could be created. */
  readonly uuid?: string;
}

/** One thing a device did that a kernel VFIO driver would not. */
export interface ConformanceFailure {
  /** The check id (`region.sparse-areas`). */
  readonly check: string;
  readonly device: DeviceLabel;
  /** The region index the failure is about, if any. */
  readonly region?: number;
  /** The offset (inside the region, or in config space for config checks) the failure is about. */
  readonly offset?: number;
  readonly expected: string;
  readonly actual: string;
  /** One sentence that names the check, the device, the region or offset and what was expected. */
  readonly message: string;
}

/** What a check passes to `ctx.fail`: the problem; the context adds the check and the device. */
export interface FailureInput {
  readonly region?: number;
  readonly offset?: number;
  readonly expected: string;
  readonly actual: string;
  /** What went wrong, in a few words (`sparse area 1 is not page aligned`). */
  readonly problem: string;
}

/**
 * The device file a check talks to: the raw road (an ioctl number and its argument bytes, reads
 * and writes at file offsets, mmap) plus reset, info and the migration data stream. Core's
 * DeviceFile is one (a plugin behind the core's rules); a kernel VFIO device fd is another.
 */
export type ConformanceFile = Pick<
  DeviceFile,
  | 'name'
  | 'ioctl'
  | 'read'
  | 'write'
  | 'mmap'
  | 'reset'
  | 'deviceInfo'
  | 'open'
  | 'close'
  | 'migrationRead'
  | 'migrationWrite'
>;

/** The host side a check uses: eventfds it can hand to SET_IRQS and count. */
export interface CheckHost {
  /** A new eventfd; pass its number in SET_IRQS EVENTFD data. */
  createEventfd(): number;
  /** The counting trigger behind an fd made by createEventfd; undefined for other numbers. */
  eventfd(fd: number): CountingTrigger | undefined;
}

/**
 * What a device is: a TypeScript plugin's instance behind core's DeviceFile, a kernel mediated
 * device, or a device bound to vfio-pci. Checks that could hurt real hardware or a kernel
 * driver without bounds checks keep to what is safe for the subject.
 */
export type Subject = 'plugin' | 'kernel-mdev' | 'kernel-pci';

/** Another opened device of the same kind, for checks that need two (migration). */
export interface OpenedInstance {
  /** Its name: the UUID of an mdev instance, the PCI address of a function. */
  readonly name: string;
  readonly file: ConformanceFile;
  readonly host: CheckHost;
}

/** The plugin side of a device under test: what only a TypeScript plugin has. */
export interface PluginModel {
  readonly plugin: VfioPlugin;
  readonly parent: ParentDevice;
  readonly type: MdevTypeInfo;
  /** The instance created for this check (a fresh UUID). */
  readonly instance: MdevInstance;
  /** Its device file and test host, for checks that wrap the plugin's device. */
  readonly file: DeviceFile;
  readonly host: TestHost;
}

export interface CheckOptions {
  /** fast-check runs per property per device. */
  readonly numRuns: number;
  /** fast-check seed, for a reproducible run. */
  readonly seed: number | undefined;
}

export interface CheckContext {
  readonly subject: Subject;
  readonly device: DeviceLabel;
  /** The opened device file of the device under test. */
  readonly file: ConformanceFile;
  readonly host: CheckHost;
  /** The plugin, parent, type and instance: present for a plugin, absent for a kernel device. */
  readonly model: PluginModel | undefined;
  readonly options: CheckOptions;
  /** Record a failure and go on. */
  fail(failure: FailureInput): void;
  /** Stop the check and report it skipped, with the reason. */
  skip(reason: string): never;
  /** Open another device of the same kind; it is closed (and removed) after the check. Throws when there is none. */
  openAnother(): OpenedInstance;
  /** Record a remark shown with the result (an alias allowed, a limit applied). */
  note(text: string): void;
  /** A file the check opened itself, put behind the same recording as ctx.file (see ConformanceOptions.tap). */
  track(file: ConformanceFile): ConformanceFile;
}

export interface ConformanceCheck {
  /** `<area>.<name>`, stable: reports, filters and broken-plugin tests name checks by id. */
  readonly id: string;
  readonly title: string;
  run(ctx: CheckContext): void | Promise<void>;
}

export type CheckStatus = 'passed' | 'failed' | 'skipped';

export interface CheckResult {
  readonly check: string;
  readonly title: string;
  readonly status: CheckStatus;
  /** Why the check was skipped. */
  readonly reason?: string;
  readonly notes: readonly string[];
  readonly failures: readonly ConformanceFailure[];
  readonly durationMs: number;
}

export interface DeviceReport {
  readonly device: DeviceLabel;
  readonly results: readonly CheckResult[];
}

export interface ConformanceReport {
  readonly plugin: string;
  readonly contractVersion: number;
  readonly devices: readonly DeviceReport[];
  /** Every failure of every device, in order. */
  readonly failures: readonly ConformanceFailure[];
  readonly passed: number;
  readonly failed: number;
  readonly skipped: number;
  readonly durationMs: number;
}
