/**
 * V8's memory reducer and a process on a vfio-user request path (a server serving a device, a VMM
 * attaching one).
 *
 * V8 runs a memory-reducing full GC when the heap looks idle: allocation has slowed down, which
 * is exactly what a server whose hot path allocates nothing looks like. Measured on our server
 * serving 4-byte reads: ~8 s after start, two or three Mark-Compacts (reduce) paused the event
 * loop 6-18 ms each (--trace-gc), three orders of magnitude above a request. Without the reducer
 * every other collection stays as it is: the heap still grows and is collected on allocation, it
 * is only not shrunk for an idle-looking period.
 *
 * What this module can and cannot do: in Node 20 (V8 11.3) the reducer is off only in a process
 * that starts with the flag (`node --no-memory-reducer ...`, a fork's execArgv). The `vfiokit`
 * executable starts so (its #! line); an embedder that serves or attaches devices from its own
 * process must pass the flag itself. quietHeap() only sets the flag at run time, which in Node
 * 20 stops nothing (measured: the Mark-Compacts above came all the same).
 */
import { setFlagsFromString } from 'node:v8';

let done = false;

/** Set --no-memory-reducer at run time (idempotent); in Node 20 the reducer keeps running (above). */
export function quietHeap(): void {
  if (done) return;
  done = true;
  setFlagsFromString('--no-memory-reducer');
}
