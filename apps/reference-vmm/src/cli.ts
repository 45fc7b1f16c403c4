#!/usr/bin/env -S node --no-memory-reducer
/**
 * The `vfiokit` executable. Node starts it without V8's memory reducer (the #! line): serving or
 * attaching a device puts this process on a vfio-user request path, where the reducer's full
 * collections of an idle-looking heap pause it 6–18 ms, and Node 20 takes the flag only at start
 * (see @vfiokit/vfio-user's ServeDeviceOptions.memoryReducer).
 */
import { main } from './cli/main.js';
import { reasonText, watchingRejections } from './machine/plugin-rejections.js';

// Plugin code that fails after it returned (a Promise left rejected, a throw from a timer) is
// reported in one sentence, not as a raw stack; a rejection while plugin code runs is the
// runner's to report (watchRejections), against the code that left it.
let strayFailure = false;
process.on('unhandledRejection', (reason) => {
  if (watchingRejections()) return;
  strayFailure = true;
  process.exitCode = 1;
  process.stderr.write(
    `vfiokit: a Promise was left rejected after the code that made it returned: ${reasonText(reason)}\n  This is a bug in a plugin (or in vfiokit); the command goes on and exits 1.\n`,
  );
});
process.on('uncaughtException', (err) => {
  process.stderr.write(
    `vfiokit: code running outside any command step threw: ${reasonText(err)}\n  This is a bug in a plugin (or in vfiokit); the command stops here.\n`,
  );
  process.exit(1);
});

const code = await main(process.argv.slice(2));
process.exitCode = strayFailure ? Math.max(code, 1) : code;
