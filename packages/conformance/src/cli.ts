#!/usr/bin/env node
/**
 * vfiokit-conformance: run the conformance suite on a plugin package, print one line per check,
 * optionally write JUnit XML, and exit 1 when anything failed.
 */
import { mkdirSync, realpathSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { VfioPlugin } from '@vfiokit/core';
import { abiReport, formatAbiReport } from '@vfiokit/core/abi';
import { formatResult, formatSummary } from './format.js';
import { toJUnitXml } from './junit.js';
import { openKernelTarget } from './kernel.js';
import { loadPlugin } from './load.js';
import {
  type ConformanceOptions,
  type DeviceTarget,
  formatDevice,
  runConformance,
  runTargetConformance,
} from './suite.js';
import type { DeviceLabel } from './types.js';

const HELP = `Usage: vfiokit-conformance --plugin <package> [options]
       vfiokit-conformance --vfio <device> [options]
       vfiokit-conformance --abi-report

Runs the vfiokit conformance suite on a plugin package (its default export), or on a device of
the running kernel through VFIO.

Options:
  --plugin <package>  the plugin: a path to its entry file or folder, or a package name, found
                      in node_modules at or above the current directory, else among the
                      packages of the workspace the current directory is in (built), else
                      installed beside vfiokit-conformance
  --vfio <device>     a kernel VFIO device: a sysfs path, a PCI address (0000:01:00.0) or an mdev
                      UUID; needs @vfiokit/linux-vfio installed, root (or the /dev/vfio nodes) and
                      the vfio, vfio_iommu_type1 and vfio-pci (or mdev) modules
  --iommu <path>      for --vfio: auto (default: iommufd where the kernel has it), group or iommufd
  --junit <file>      also write the results as JUnit XML to <file>
  --json              print the report as JSON instead of one line per check
  --check <id>        run only this check or area (repeatable: --check region --check irq.info)
  --runs <n>          fast-check runs per property per device (default 200)
  --seed <n>          fast-check seed, for a reproducible run
  --abi-report        print the linux/vfio.h constants and struct layouts this build encodes, as JSON
  --help              show this text

Exit status: 0 when every check passed or was skipped, 1 when a check failed, 2 on bad usage.
`;

interface Args {
  plugin?: string;
  vfio?: string;
  iommu?: 'auto' | 'group' | 'iommufd';
  junit?: string;
  json: boolean;
  abi: boolean;
  help: boolean;
  checks: string[];
  runs?: number;
  seed?: number;
}

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = { json: false, abi: false, help: false, checks: [] };
  const value = (i: number, flag: string): string => {
    const v = argv[i + 1];
    if (v === undefined || v.startsWith('--')) throw new UsageError(`${flag} needs a value.`);
    return v;
  };
  const int = (v: string, flag: string): number => {
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new UsageError(`${flag} takes a whole number, not "${v}".`);
    return n;
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const [flag, inline] =
      a.startsWith('--') && a.includes('=')
        ? [a.slice(0, a.indexOf('=')), a.slice(a.indexOf('=') + 1)]
        : [a, undefined];
    const take = () => {
      if (inline !== undefined) return inline;
      const v = value(i, flag);
      i++;
      return v;
    };
    switch (flag) {
      case '--plugin':
        args.plugin = take();
        break;
      case '--junit':
        args.junit = take();
        break;
      case '--vfio':
        args.vfio = take();
        break;
      case '--iommu': {
        const v = take();
        if (v !== 'auto' && v !== 'group' && v !== 'iommufd')
          throw new UsageError(`--iommu takes auto, group or iommufd, not "${v}".`);
        args.iommu = v;
        break;
      }
      case '--check':
        args.checks.push(take());
        break;
      case '--runs':
        args.runs = int(take(), flag);
        break;
      case '--seed':
        args.seed = int(take(), flag);
        break;
      case '--json':
        args.json = true;
        break;
      case '--abi-report':
        args.abi = true;
        break;
      case '--help':
      case '-h':
        args.help = true;
        break;
      default:
        throw new UsageError(`unknown argument "${a}".`);
    }
  }
  return args;
}

export interface Output {
  write(text: string): unknown;
  readonly isTTY?: boolean;
}

export async function main(
  argv: readonly string[],
  out: Output = process.stdout,
  err: Output = process.stderr,
): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(argv);
  } catch (e) {
    err.write(`vfiokit-conformance: ${(e as Error).message} Run with --help for usage.\n`);
    return 2;
  }
  if (args.help) {
    out.write(HELP);
    return 0;
  }
  if (args.abi) {
    out.write(formatAbiReport(abiReport()));
    return 0;
  }
  if (!args.plugin && !args.vfio) {
    err.write(
      'vfiokit-conformance: --plugin <package> or --vfio <device> is required. Run with --help for usage.\n',
    );
    return 2;
  }
  if (args.plugin && args.vfio) {
    err.write('vfiokit-conformance: give --plugin or --vfio, not both. Run with --help for usage.\n');
    return 2;
  }
  let subject: { plugin: VfioPlugin } | { target: DeviceTarget };
  try {
    subject = args.vfio
      ? { target: await openKernelTarget(args.vfio, args.iommu ? { iommu: args.iommu } : {}) }
      : { plugin: await loadPlugin(args.plugin as string) };
  } catch (e) {
    err.write(`vfiokit-conformance: ${(e as Error).message}\n`);
    return 2;
  }
  const color = !args.json && out.isTTY === true && !process.env.NO_COLOR;
  let lastDevice = '';
  const options: ConformanceOptions = {
    checks: args.checks.length ? args.checks : undefined,
    numRuns: args.runs,
    seed: args.seed,
    onResult: args.json
      ? undefined
      : (device: DeviceLabel, r) => {
          const name = device.parent === '-' ? `plugin ${device.plugin}` : `device ${formatDevice(device)}`;
          if (name !== lastDevice) out.write(`${name}\n`);
          lastDevice = name;
          out.write(`${formatResult(r, color).join('\n')}\n`);
        },
  };
  const report =
    'target' in subject
      ? await runTargetConformance(subject.target, options)
      : await runConformance(subject.plugin, options);
  if (args.json) out.write(`${JSON.stringify(report, null, 2)}\n`);
  else out.write(`\n${formatSummary(report, color)}\n`);
  if (args.junit) {
    const file = path.resolve(args.junit);
    mkdirSync(path.dirname(file), { recursive: true });
    writeFileSync(file, toJUnitXml(report));
  }
  return report.failed > 0 ? 1 : 0;
}

function isMain(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    return realpathSync(script) === fileURLToPath(import.meta.url);
  } catch {
    return false;
  }
}

if (isMain()) process.exitCode = await main(process.argv.slice(2));
