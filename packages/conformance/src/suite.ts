/**
 * Running the checks: for every parent and mdev type of a plugin, each check gets a fresh
 * instance (a new UUID), opened through core's DeviceFile on a test host, and the instance is
 * closed and removed after it, so no check sees what another one did.
 */
import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import {
  CONTRACT_VERSION,
  type MdevInstance,
  type MdevTypeInfo,
  type ParentDevice,
  type VfioPlugin,
} from '@vfiokit/core';
import { DeviceFile } from '@vfiokit/core/host';
import { ALL_CHECKS } from './checks/index.js';
import { describeError, hex, regionName } from './checks/util.js';
import { createFakeClock, createRecordingLogger, createTestHost } from './host.js';
import type {
  CheckContext,
  CheckResult,
  ConformanceCheck,
  ConformanceFailure,
  ConformanceReport,
  DeviceLabel,
  DeviceReport,
  FailureInput,
  OpenedInstance,
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

/** Run one check against a fresh instance of `type` on `parent`. */
export async function runCheck(
  plugin: VfioPlugin,
  parent: ParentDevice,
  type: MdevTypeInfo,
  check: ConformanceCheck,
  opts: ConformanceOptions = {},
): Promise<CheckResult> {
  const start = performance.now();
  const failures: ConformanceFailure[] = [];
  const notes: string[] = [];
  const base: DeviceLabel = { plugin: plugin.name, parent: parent.name, type: type.id };
  const record = (device: DeviceLabel, f: FailureInput) => failures.push(makeFailure(check.id, device, f));

  const now = parent.types().find((t) => t.id === type.id);
  if (!now) {
    record(base, {
      problem: `the parent no longer lists type ${type.id}`,
      expected: 'the type listed',
      actual: 'missing',
    });
    return result(check, start, failures, notes);
  }
  if (now.availableInstances < 1) {
    return result(
      check,
      start,
      failures,
      notes,
      `type ${type.id} has available_instances 0, so no instance can be created.`,
    );
  }

  const opened: { uuid: string; file: DeviceFile }[] = [];
  const openInstance = (): OpenedInstance => {
    const uuid = randomUUID();
    const instance: MdevInstance = parent.create(type.id, uuid);
    const host = createTestHost({ memorySize: opts.memorySize, device: uuid });
    const file = new DeviceFile(instance.device, host);
    opened.push({ uuid: instance.uuid, file });
    file.open();
    return { instance, file, host };
  };

  let main: OpenedInstance;
  try {
    main = openInstance();
  } catch (err) {
    record(base, {
      problem: 'creating and opening an instance failed',
      expected: 'an open device',
      actual: describeError(err),
    });
    cleanup(parent, opened, (d, f) => record(d, f), base);
    return result(check, start, failures, notes);
  }
  const device: DeviceLabel = { ...base, uuid: main.instance.uuid };
  const ctx: CheckContext = {
    plugin,
    parent,
    type,
    device,
    instance: main.instance,
    file: main.file,
    host: main.host,
    options: { numRuns: opts.numRuns ?? 200, seed: opts.seed },
    fail: (f) => record(device, f),
    skip: (reason) => {
      throw new SkipSignal(reason);
    },
    openAnother: openInstance,
    note: (text) => {
      notes.push(text);
    },
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
  cleanup(parent, opened, (d, f) => record(d, f), base);
  return result(check, start, failures, notes, skipped);
}

function cleanup(
  parent: ParentDevice,
  opened: { uuid: string; file: DeviceFile }[],
  record: (d: DeviceLabel, f: FailureInput) => void,
  base: DeviceLabel,
): void {
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
