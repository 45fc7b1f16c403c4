/**
 * Running the checks: for every parent and mdev type of a plugin, each check gets a fresh
 * instance (a new UUID), opened through core's DeviceFile on a test host, and the instance is
 * closed and removed after it, so no check sees what another one did. A device target (a kernel
 * device) is opened afresh for each check the same way.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  CONTRACT_VERSION,
  type MdevInstance,
  type MdevTypeInfo,
  type ParentDevice,
  VfioError,
  type VfioPlugin,
} from '@vfiokit/core';
import { DeviceFile } from '@vfiokit/core/host';
import { ALL_CHECKS } from './checks/index.js';
import { describeError, hex, regionName } from './checks/util.js';
import { createFakeClock, createRecordingLogger, createTestHost, type TestHost } from './host.js';
import type {
  CheckContext,
  CheckResult,
  ConformanceCheck,
  ConformanceFailure,
  ConformanceFile,
  ConformanceReport,
  DeviceLabel,
  DeviceReport,
  FailureInput,
  OpenedInstance,
  PluginModel,
  Subject,
} from './types.js';

export interface ConformanceOptions {
  /** fast-check runs per property per device (default 200). */
  readonly numRuns?: number;
  /** fast-check seed, for a reproducible run. */
  readonly seed?: number;
  /** Run only checks whose id equals, or starts with `<entry>.`, one of these. */
  readonly checks?: readonly string[];
  /** Leave out checks named the same way. */
  readonly skipChecks?: readonly string[];
  /** Options handed to the plugin's probe (as the VMM configuration would). */
  readonly pluginOptions?: Readonly<Record<string, unknown>>;
  /** Guest memory of each test host, in bytes. */
  readonly memorySize?: number;
  /** Called after each check, for live output. */
  readonly onResult?: (device: DeviceLabel, result: CheckResult) => void;
  /**
   * Put something between each check and the device files it gets (the main one and every
   * openAnother), to record the calls and their answers: the kernel differential does.
   */
  readonly tap?: (check: string, file: ConformanceFile) => ConformanceFile;
}

/** The plugin-level entry of a report: contract and probe. */
export const PLUGIN_LEVEL = '-';

class SkipSignal {
  constructor(readonly reason: string) {}
}

function matches(id: string, list: readonly string[]): boolean {
  return list.some((p) => id === p || id.startsWith(p.endsWith('.') ? p : `${p}.`));
}

export function selectChecks(opts: ConformanceOptions = {}): ConformanceCheck[] {
  return ALL_CHECKS.filter(
    (c) =>
      (!opts.checks || matches(c.id, opts.checks)) && !(opts.skipChecks && matches(c.id, opts.skipChecks)),
  );
}

export function formatDevice(d: DeviceLabel): string {
  return `${d.plugin}/${d.parent}/${d.type}${d.uuid ? ` (${d.uuid})` : ''}`;
}

export function makeFailure(check: string, device: DeviceLabel, f: FailureInput): ConformanceFailure {
  const where = [
    f.region !== undefined ? `region ${f.region} (${regionName(f.region)})` : undefined,
    f.offset !== undefined ? `offset ${hex(f.offset)}` : undefined,
  ].filter(Boolean);
  const message = `${check}: device ${formatDevice(device)}${where.length ? `, ${where.join(', ')}` : ''}: ${f.problem}; expected ${f.expected}, got ${f.actual.replace(/\.+$/, '')}.`;
  return {
    check,
    device,
    ...(f.region !== undefined ? { region: f.region } : {}),
    ...(f.offset !== undefined ? { offset: f.offset } : {}),
    expected: f.expected,
    actual: f.actual,
    message,
  };
}

function result(
  check: ConformanceCheck,
  start: number,
  failures: ConformanceFailure[],
  notes: string[],
  skipped?: string,
): CheckResult {
  return {
    check: check.id,
    title: check.title,
    status: failures.length > 0 ? 'failed' : skipped !== undefined ? 'skipped' : 'passed',
    ...(skipped !== undefined ? { reason: skipped } : {}),
    notes,
    failures,
    durationMs: performance.now() - start,
  };
}

/** What one check runs on: how to open the device under test, and another one, and how to let go of them. */
interface CheckSession {
  readonly subject: Subject;
  /** The label before anything is opened. */
  readonly base: DeviceLabel;
  /** Open the device under test; throws when it cannot be opened. */
  open(): { device: DeviceLabel; opened: OpenedInstance; model: PluginModel | undefined };
  openAnother(): OpenedInstance;
  /** Close (and remove) everything opened, recording what failed. */
  close(record: (d: DeviceLabel, f: FailureInput) => void): void;
}

async function runInSession(
  check: ConformanceCheck,
  session: CheckSession,
  opts: ConformanceOptions,
): Promise<CheckResult> {
  const start = performance.now();
  const failures: ConformanceFailure[] = [];
  const notes: string[] = [];
  const record = (device: DeviceLabel, f: FailureInput) => failures.push(makeFailure(check.id, device, f));
  let main: ReturnType<CheckSession['open']>;
  try {
    main = session.open();
  } catch (err) {
    record(session.base, {
      problem:
        session.subject === 'plugin'
          ? 'creating and opening an instance failed'
          : 'opening the device failed',
      expected: 'an open device',
      actual: describeError(err),
    });
    session.close(record);
    return result(check, start, failures, notes);
  }
  const { device } = main;
  const tap = opts.tap;
  const ctx: CheckContext = {
    subject: session.subject,
    device,
    file: tap ? tap(check.id, main.opened.file) : main.opened.file,
    host: main.opened.host,
    model: main.model,
    options: { numRuns: opts.numRuns ?? 200, seed: opts.seed },
    fail: (f) => record(device, f),
    skip: (reason) => {
      throw new SkipSignal(reason);
    },
    openAnother: () => {
      const other = session.openAnother();
      return tap ? { ...other, file: tap(check.id, other.file) } : other;
    },
    note: (text) => {
      notes.push(text);
    },
    track: (file) => (tap ? tap(check.id, file) : file),
  };
  let skipped: string | undefined;
  try {
    await check.run(ctx);
  } catch (err) {
    if (err instanceof SkipSignal) skipped = err.reason;
    else
      record(device, {
        problem: 'the check stopped on an error from the device',
        expected: 'the device to answer',
        actual: describeError(err),
      });
  }
  session.close(record);
  return result(check, start, failures, notes, skipped);
}

/** A plugin's type: each check gets a fresh instance (a new UUID) opened through core's DeviceFile. */
function pluginSession(
  plugin: VfioPlugin,
  parent: ParentDevice,
  type: MdevTypeInfo,
  opts: ConformanceOptions,
): CheckSession {
  const base: DeviceLabel = { plugin: plugin.name, parent: parent.name, type: type.id };
  const opened: { uuid: string; file: DeviceFile }[] = [];
  const openInstance = (): { instance: MdevInstance; file: DeviceFile; host: TestHost } => {
    const uuid = randomUUID();
    const instance: MdevInstance = parent.create(type.id, uuid);
    const host = createTestHost({ memorySize: opts.memorySize, device: uuid });
    const file = new DeviceFile(instance.device, host);
    opened.push({ uuid: instance.uuid, file });
    file.open();
    return { instance, file, host };
  };
  return {
    subject: 'plugin',
    base,
    open() {
      const { instance, file, host } = openInstance();
      return {
        device: { ...base, uuid: instance.uuid },
        opened: { name: instance.uuid, file, host },
        model: { plugin, parent, type, instance, file, host },
      };
    },
    openAnother() {
      const { instance, file, host } = openInstance();
      return { name: instance.uuid, file, host };
    },
    close(record) {
      for (const { uuid, file } of opened.reverse()) {
        file.close();
        try {
          parent.remove(uuid);
        } catch (err) {
          record(
            { ...base, uuid },
            {
              problem: 'removing the closed instance after the check failed',
              expected: 'removal',
              actual: describeError(err),
            },
          );
        }
      }
      opened.length = 0;
    },
  };
}

/** Run one check against a fresh instance of `type` on `parent`. */
export async function runCheck(
  plugin: VfioPlugin,
  parent: ParentDevice,
  type: MdevTypeInfo,
  check: ConformanceCheck,
  opts: ConformanceOptions = {},
): Promise<CheckResult> {
  const start = performance.now();
  const base: DeviceLabel = { plugin: plugin.name, parent: parent.name, type: type.id };
  const now = parent.types().find((t) => t.id === type.id);
  if (!now) {
    const failures = [
      makeFailure(check.id, base, {
        problem: `the parent no longer lists type ${type.id}`,
        expected: 'the type listed',
        actual: 'missing',
      }),
    ];
    return result(check, start, failures, []);
  }
  if (now.availableInstances < 1) {
    return result(
      check,
      start,
      [],
      [],
      `type ${type.id} has available_instances 0, so no instance can be created.`,
    );
  }
  return runInSession(check, pluginSession(plugin, parent, type, opts), opts);
}

/**
 * A device the suite does not create: a kernel VFIO device, say. The target opens it afresh
 * for each check (and, where it can, another of the same kind); the suite closes them after.
 */
export interface DeviceTarget {
  readonly label: DeviceLabel;
  readonly subject: Exclude<Subject, 'plugin'>;
  open(): OpenedTarget;
  /** Another device of the same kind (an mdev of the same type, created for the check); absent when there is none. */
  openAnother?(): OpenedTarget;
}

/** An opened target device: `release` closes it and undoes what opening made. */
export interface OpenedTarget extends OpenedInstance {
  release(): void;
}

function targetSession(target: DeviceTarget): CheckSession {
  const opened: OpenedTarget[] = [];
  const release = (record: (d: DeviceLabel, f: FailureInput) => void) => {
    for (const o of opened.reverse()) {
      try {
        o.release();
      } catch (err) {
        record(
          { ...target.label, uuid: o.name },
          {
            problem: 'releasing the device after the check failed',
            expected: 'release',
            actual: describeError(err),
          },
        );
      }
    }
    opened.length = 0;
  };
  return {
    subject: target.subject,
    base: target.label,
    open() {
      const o = target.open();
      opened.push(o);
      return { device: target.label, opened: o, model: undefined };
    },
    openAnother() {
      if (!target.openAnother)
        throw new VfioError(
          'ENODEV',
          `${target.label.uuid ?? 'the device'} has no second device of its kind to open.`,
        );
      const o = target.openAnother();
      opened.push(o);
      return o;
    },
    close: release,
  };
}

/** Run the suite on a device target; checks about a plugin's parent are reported skipped with the reason. */
export async function runTargetConformance(
  target: DeviceTarget,
  opts: ConformanceOptions = {},
): Promise<ConformanceReport> {
  const start = performance.now();
  const results: CheckResult[] = [];
  for (const check of selectChecks(opts)) {
    const r = await runInSession(check, targetSession(target), opts);
    results.push(r);
    opts.onResult?.(target.label, r);
  }
  return {
    plugin: target.label.plugin,
    contractVersion: CONTRACT_VERSION,
    devices: [{ device: target.label, results }],
    failures: results.flatMap((r) => r.failures),
    passed: results.filter((r) => r.status === 'passed').length,
    failed: results.filter((r) => r.status === 'failed').length,
    skipped: results.filter((r) => r.status === 'skipped').length,
    durationMs: performance.now() - start,
  };
}

/** What the suite runs against: the plugin's parents and their types, or a failure. */
export interface ProbedPlugin {
  readonly parents: readonly ParentDevice[];
  readonly failures: ConformanceFailure[];
  /** The types of each parent as listed before any check ran. */
  readonly devices: readonly { parent: ParentDevice; type: MdevTypeInfo }[];
}

export function probePlugin(plugin: VfioPlugin, opts: ConformanceOptions = {}): ProbedPlugin {
  const label: DeviceLabel = { plugin: String(plugin?.name), parent: PLUGIN_LEVEL, type: PLUGIN_LEVEL };
  const failures: ConformanceFailure[] = [];
  const fail = (check: string, f: FailureInput) => failures.push(makeFailure(check, label, f));
  if (plugin.contractVersion !== CONTRACT_VERSION) {
    fail('plugin.contract', {
      problem: 'the plugin was written against another contract version',
      expected: `contractVersion ${CONTRACT_VERSION}`,
      actual: `contractVersion ${String(plugin.contractVersion)}`,
    });
  }
  if (plugin.deviceApi !== 'vfio-pci') {
    fail('plugin.contract', {
      problem: 'the plugin serves a device API the suite does not know',
      expected: "deviceApi 'vfio-pci'",
      actual: String(plugin.deviceApi),
    });
  }
  let parents: readonly ParentDevice[] = [];
  try {
    parents = plugin.probe({
      clock: createFakeClock(),
      log: createRecordingLogger(),
      options: opts.pluginOptions ?? {},
    });
  } catch (err) {
    fail('plugin.probe', {
      problem: 'probe threw',
      expected: 'a list of parent devices',
      actual: describeError(err),
    });
  }
  if (failures.length === 0 && parents.length === 0) {
    fail('plugin.probe', {
      problem: 'probe found no parent device',
      expected: 'at least one parent',
      actual: 'none',
    });
  }
  const devices: { parent: ParentDevice; type: MdevTypeInfo }[] = [];
  for (const parent of parents) {
    let types: readonly MdevTypeInfo[] = [];
    try {
      types = parent.types();
    } catch (err) {
      fail('plugin.probe', {
        problem: `listing the types of parent ${parent.name} threw`,
        expected: 'mdev types',
        actual: describeError(err),
      });
    }
    if (types.length === 0)
      fail('plugin.probe', {
        problem: `parent ${parent.name} has no mdev types`,
        expected: 'at least one type',
        actual: 'none',
      });
    for (const type of types) {
      if (type.deviceApi !== 'vfio-pci') {
        fail('plugin.probe', {
          problem: `type ${type.id} of parent ${parent.name} has another device_api`,
          expected: 'vfio-pci',
          actual: String(type.deviceApi),
        });
      }
      devices.push({ parent, type });
    }
  }
  return { parents, failures, devices };
}

function pluginLevelResults(probed: ProbedPlugin): CheckResult[] {
  return ['plugin.contract', 'plugin.probe'].map((id) => {
    const failures = probed.failures.filter((f) => f.check === id);
    return {
      check: id,
      title:
        id === 'plugin.contract'
          ? 'the plugin is a VfioPlugin of this contract version serving vfio-pci'
          : 'probe finds parent devices with vfio-pci mdev types',
      status: failures.length ? 'failed' : 'passed',
      notes: [],
      failures,
      durationMs: 0,
    } satisfies CheckResult;
  });
}

/** Run the whole suite on a plugin. Never throws for a misbehaving plugin: everything lands in the report. */
export async function runConformance(
  plugin: VfioPlugin,
  opts: ConformanceOptions = {},
): Promise<ConformanceReport> {
  const start = performance.now();
  const probed = probePlugin(plugin, opts);
  const pluginLabel: DeviceLabel = { plugin: plugin.name, parent: PLUGIN_LEVEL, type: PLUGIN_LEVEL };
  const devices: DeviceReport[] = [{ device: pluginLabel, results: pluginLevelResults(probed) }];
  for (const r of devices[0].results) opts.onResult?.(pluginLabel, r);
  const checks = selectChecks(opts);
  for (const { parent, type } of probed.devices) {
    const label: DeviceLabel = { plugin: plugin.name, parent: parent.name, type: type.id };
    const results: CheckResult[] = [];
    for (const check of checks) {
      const r = await runCheck(plugin, parent, type, check, opts);
      results.push(r);
      opts.onResult?.(label, r);
    }
    devices.push({ device: label, results });
  }
  const all = devices.flatMap((d) => d.results);
  return {
    plugin: plugin.name,
    contractVersion: plugin.contractVersion,
    devices,
    failures: all.flatMap((r) => r.failures),
    passed: all.filter((r) => r.status === 'passed').length,
    failed: all.filter((r) => r.status === 'failed').length,
    skipped: all.filter((r) => r.status === 'skipped').length,
    durationMs: performance.now() - start,
  };
}

/** The part of vitest's API the suite registers tests with. */
export interface VitestApi {
  describe(name: string, fn: () => void): unknown;
  it(name: string, fn: (ctx: { skip(note?: string): never }) => unknown, timeout?: number): unknown;
}

/** Where vitest keeps its own module in a test worker (set by vitest's setupGlobalEnv). */
function vitestFromWorker(): VitestApi | undefined {
  const api = (globalThis as { __vitest_index__?: Partial<VitestApi> }).__vitest_index__;
  return api && typeof api.describe === 'function' && typeof api.it === 'function'
    ? (api as VitestApi)
    : undefined;
}

/**
 * Register the suite with vitest: one `describe` per device (parent and mdev type) and one `it`
 * per check, so a plugin package's test file is just `await describeConformance(plugin)`.
 * Inside a vitest worker the tests are registered at once (awaiting is then optional); elsewhere
 * vitest is imported on demand, so the CLI never needs it.
 */
export function describeConformance(plugin: VfioPlugin, opts: ConformanceOptions = {}): Promise<void> {
  const api = vitestFromWorker();
  if (api) {
    registerConformance(api, plugin, opts);
    return Promise.resolve();
  }
  return import('vitest').then((v) => registerConformance(v as unknown as VitestApi, plugin, opts));
}

/** describeConformance with the vitest functions given explicitly. */
export function registerConformance(api: VitestApi, plugin: VfioPlugin, opts: ConformanceOptions = {}): void {
  const probed = probePlugin(plugin, opts);
  const checks = selectChecks(opts);
  api.describe(`conformance: ${plugin.name}`, () => {
    for (const r of pluginLevelResults(probed)) {
      api.it(`${r.check}: ${r.title}`, () => {
        if (r.failures.length) throw new Error(r.failures.map((f) => f.message).join('\n'));
      });
    }
    for (const { parent, type } of probed.devices) {
      api.describe(`${parent.name} / ${type.id}`, () => {
        for (const check of checks) {
          api.it(`${check.id}: ${check.title}`, async (tctx) => {
            const r = await runCheck(plugin, parent, type, check, opts);
            if (r.status === 'failed') throw new Error(r.failures.map((f) => f.message).join('\n'));
            if (r.status === 'skipped') tctx.skip(r.reason);
          });
        }
      });
    }
  });
}
