/**
 * The data model of the suite: checks as data, the failures they record and the report a run
 * produces. A check is `{ id, title, run(ctx) }`; it records failures through its context and
 * keeps going, so one run names every problem it finds, not just the first.
 */
import type { MdevInstance, MdevTypeInfo, ParentDevice, VfioPlugin } from '@vfiokit/core';
import type { DeviceFile } from '@vfiokit/core/host';
import type { TestHost } from './host.js';

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

/** A second instance of the same type, opened, for checks that need two (migration). */
export interface OpenedInstance {
  readonly instance: MdevInstance;
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
  readonly plugin: VfioPlugin;
  readonly parent: ParentDevice;
  readonly type: MdevTypeInfo;
  readonly device: DeviceLabel;
  /** The instance created for this check (a fresh UUID) and its opened device file. */
  readonly instance: MdevInstance;
  readonly file: DeviceFile;
  readonly host: TestHost;
  readonly options: CheckOptions;
  /** Record a failure and go on. */
  fail(failure: FailureInput): void;
  /** Stop the check and report it skipped, with the reason. */
  skip(reason: string): never;
  /** Create and open another instance of the same type; it is closed and removed after the check. */
  openAnother(): OpenedInstance;
  /** Record a remark shown with the result (an alias allowed, a limit applied). */
  note(text: string): void;
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
