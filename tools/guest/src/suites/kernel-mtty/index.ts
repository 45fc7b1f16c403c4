/**
 * The kernel's own mtty sample, checked by the suite in a real guest: samples/vfio-mdev/mtty.c
 * built on the host against the guest kernel's headers, loaded beside vfio, vfio_iommu_type1
 * and mdev, an mtty-2 instance created through sysfs, then the differential against
 * @vfiokit/sample-mtty on the fresh instance (every difference fixed or explained, written to
 * reports/guest/mtty-differential.{md,json}) and vfiokit-conformance --vfio on it, the vendor's
 * command, with JUnit. The instance keeps its state across opens, as hardware does, so the
 * differential goes first.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { compareRuns, renderDifferential, type SideRun } from '@vfiokit/linux-vfio';
import { buildMttyModule } from '../../assets/mtty-module.js';
import { GUEST_PROJECT, NODE_GUEST_QEMU_ARGS, projectFiles } from '../../assets/project.js';
import { PACKAGE_DIR } from '../../env.js';
import { checkScript, defineSuite, type HostCheckContext } from '../../suite.js';
import { MTTY_EXPLANATIONS } from './explanations.js';
import { KERNEL_FINDINGS } from './findings.js';
import { runOurMtty } from './ours.js';

/** The instance the guest creates, and the suite's options on both sides of the differential. */
const UUID = '83b8f4f2-509f-382f-3c1e-e6bfe0fa1001';
const RUNS = 25;
const SEED = 1;

let kernelLabel = "the kernel's samples/vfio-mdev/mtty.c (mtty-2)";

/** JUnit lines a guest check printed (`junit <line>`), written into the boot's report folder. */
export function saveJunit(ctx: HostCheckContext, file: string): string | undefined {
  const xml = ctx.guest?.lines.filter((l) => l.startsWith('junit ')).map((l) => l.slice(6));
  if (!xml?.length) return undefined;
  const path = join(ctx.artifacts, file);
  writeFileSync(path, `${xml.join('\n')}\n`);
  return path;
}

async function differential(ctx: HostCheckContext) {
  const lines = ctx.guest?.lines ?? [];
  const chunks = lines.filter((l) => l.startsWith('side ')).map((l) => l.slice(5));
  if (!chunks.length || !lines.some((l) => l.startsWith('side-end ')))
    return { fail: 'the guest printed no kernel side (see the output)' };
  const side = JSON.parse(gunzipSync(Buffer.from(chunks.join(''), 'base64')).toString('utf8')) as SideRun;
  const kernel = { ...side, label: kernelLabel };
  const ours = await runOurMtty("@vfiokit/sample-mtty (mtty-2) behind @vfiokit/core's DeviceFile", {
    numRuns: RUNS,
    seed: SEED,
  });
  const d = compareRuns(kernel, ours, MTTY_EXPLANATIONS);
  mkdirSync(ctx.reportsDir, { recursive: true });
  writeFileSync(
    join(ctx.reportsDir, 'mtty-differential.json'),
    `${JSON.stringify({ ...d, findings: KERNEL_FINDINGS }, null, 2)}\n`,
  );
  writeFileSync(
    join(ctx.reportsDir, 'mtty-differential.md'),
    renderDifferential(d, "The kernel's mtty and @vfiokit/sample-mtty", KERNEL_FINDINGS),
  );
  const summary = `${d.differences.length} differences, ${d.differences.length - d.unexplained.length} explained; reports/guest/mtty-differential.md`;
  return d.unexplained.length
    ? { fail: `unexplained differences: ${d.unexplained.join('; ')} (${summary})` }
    : { note: summary };
}

export default defineSuite({
  name: 'kernel-mtty',
  boots: [
    {
      name: 'mtty-2',
      devices: [],
      modules: ['vfio', 'vfio_iommu_type1', 'mdev'],
      memoryMiB: 1024,
      qemuArgs: [...NODE_GUEST_QEMU_ARGS],
      env: { UUID, RUNS: String(RUNS), SEED: String(SEED) },
      async prepare(p) {
        const ko = await buildMttyModule({ cacheDir: p.cacheDir, release: p.kernelRelease, log: p.log });
        kernelLabel = `the kernel's samples/vfio-mdev/mtty.c (mtty-2), linux-source ${ko.sourceVersion}, Linux ${p.kernelRelease}`;
        const stage = join(p.workDir, 'project');
        mkdirSync(stage, { recursive: true });
        return [
          { path: '/vfk/mtty.ko', from: ko.file },
          ...projectFiles(p.root, stage, ['@vfiokit/conformance', '@vfiokit/linux-vfio']),
          {
            path: `${GUEST_PROJECT}/kernel-side.mjs`,
            from: join(PACKAGE_DIR, 'guest', 'node', 'kernel-side.mjs'),
          },
        ];
      },
      checks: [
        {
          name: "kernel-mtty: the kernel's mtty.ko loads beside vfio, vfio_iommu_type1 and mdev and offers mtty-1 and mtty-2",
          script: checkScript('kernel-mtty/load.sh'),
        },
        {
          name: 'kernel-mtty: an mtty-2 created through mdev_supported_types/mtty-2/create gets an IOMMU group and a /dev/vfio node',
          script: checkScript('kernel-mtty/create.sh'),
        },
        {
          name: 'kernel-mtty: the differential against @vfiokit/sample-mtty fixes or explains every difference',
          script: checkScript('kernel-mtty/differential.sh'),
          timeoutSec: 240,
          host: differential,
        },
        {
          name: 'kernel-mtty: vfiokit-conformance --vfio <uuid> runs every check that applies and writes JUnit',
          script: checkScript('kernel-mtty/conformance.sh'),
          timeoutSec: 240,
          host: (ctx) => {
            const file = saveJunit(ctx, 'conformance.xml');
            const tail = ctx.guest?.lines.filter((l) => /passed, \d+ failed/.test(l)).at(-1);
            return file ? { note: `${tail ?? ''} JUnit: ${file}` } : { fail: 'the guest printed no JUnit' };
          },
        },
      ],
    },
  ],
});
