// The kernel's side of a differential, run in the guest: the facts of a kernel VFIO device and
// the conformance suite on it with every call recorded, printed as gzipped JSON in base64
// `side <chunk>` lines for the host to join (the host runs our side and compares).
import { gzipSync } from 'node:zlib';
import { runTargetConformance } from '@vfiokit/conformance';
import { kernelTarget, runSide } from '@vfiokit/linux-vfio';

const [spec, runs, seed, label] = process.argv.slice(2);
const target = kernelTarget(spec);
const side = await runSide(
  label,
  () => {
    const o = target.open();
    return { file: o.file, close: () => o.release() };
  },
  (opts) => runTargetConformance(target, opts),
  { numRuns: Number(runs), seed: Number(seed) },
);
const text = gzipSync(JSON.stringify(side)).toString('base64');
for (let at = 0; at < text.length; at += 4096) console.log(`side ${text.slice(at, at + 4096)}`);
const r = side.report;
console.log(`side-end ${text.length} ${r.passed} passed, ${r.failed} failed, ${r.skipped} skipped`);
