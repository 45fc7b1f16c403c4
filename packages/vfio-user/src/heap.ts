/**
 * The engine's memory reducer off, once per process, for a process on a vfio-user request path
 * (a server serving a device, a VMM attaching one).
 *
 * V8 runs a memory-reducing full GC when the heap looks idle: allocation has slowed down, which
 * is exactly what a server whose hot path allocates nothing looks like. Measured on our server
 * serving 4-byte reads: every ~8 s a Mark-Compact (reduce) paused the event loop 3-15 ms (its
 * largest incremental step 12 ms), two to three orders of magnitude above a request. Turning
 * the reducer off leaves every other collection as it is: the heap still grows and is
 * collected on allocation, it is only not shrunk for an idle-looking period.
 *
 * In Node 20 (V8 11.3) the flag only holds when the process starts with it (`node
 * --no-memory-reducer`, or a fork's execArgv): set here, once the heap exists, it does not stop
 * the reducer — measured with --trace-gc on the tail bench's server, whose Mark-Compacts (reduce)
 * still came ~8 s after start (6–18 ms each). A process that must not see those pauses starts
 * with the flag; setting it here stays harmless.
 */
import { setFlagsFromString } from 'node:v8';

let done = false;

/** Turn V8's memory reducer off for this process (idempotent). */
export function quietHeap(): void {
  if (done) return;
  done = true;
  setFlagsFromString('--no-memory-reducer');
}
