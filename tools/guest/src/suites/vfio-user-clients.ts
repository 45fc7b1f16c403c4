/**
 * The vfio-user server across real clients: one sample-mtty card served by `vfiokit serve`,
 * and QEMUs coming and going on its socket.
 *
 * - A second QEMU while one is attached: the server answers its VERSION with EBUSY after
 *   pendingTimeoutMs, and QEMU stops saying "Device or resource busy" (not its own silent
 *   5-second timeout); the attached guest is not disturbed.
 * - That attached QEMU killed (SIGKILL) in the middle of a serial transfer: the server ends the
 *   session, resets the device (its log says so), and the next QEMU's guest binds the card and
 *   loops 64 KiB back intact.
 *
 * - A burst of posted writes (QEMU coalesces them into REGION_WRITE_MULTI once its send queue
 *   is long) reaches the card in order.
 *
 * The first host check waits for the first boot's session to end: QEMU may leave posted writes
 * in the socket that the server applies after QEMU has gone.
 *
 * Every guest here boots the same image: the 64 KiB loopback first, then the burst.
 */
import { parseResults } from '../run/results.js';
import { checkScript, defineSuite, type ExtraGuest, type HostCheckContext } from '../suite.js';

const LOOPBACK = '01';
const ENDED = /session ended, device reset: /g;
const ENDED_LINE = /session ended, device reset: /;

async function until(what: string, cond: () => boolean, timeoutSec: number): Promise<void> {
  const end = Date.now() + timeoutSec * 1000;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${timeoutSec} s`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const began = (g: ExtraGuest) => parseResults(g.results()).checks.has(LOOPBACK);
const status = (g: ExtraGuest) => parseResults(g.results()).checks.get(LOOPBACK)?.status;
const sessionsEnded = (ctx: HostCheckContext) => ctx.serverLog('mtty').match(ENDED)?.length ?? 0;

/** Kept between the two host checks: the guest attached while the second QEMU knocked. */
let attached: ExtraGuest | undefined;

export default defineSuite({
  name: 'vfio-user-clients',
  boots: [
    {
      name: 'mtty-1',
      devices: [{ id: 'mtty', device: '@vfiokit/sample-mtty:mtty-1', addr: '05.0' }],
      env: { PORTS: '1' },
      // Whether QEMU coalesced posted writes into REGION_WRITE_MULTI (a note, not a check).
      qemuTrace: ['vfio_user_wrmulti'],
      checks: [
        {
          name: '64 KiB of random bytes loop back intact at 115200 baud',
          script: checkScript('sample-mtty/loopback.sh', { BAUD: 115200 }),
          timeoutSec: 120,
        },
        {
          name: 'a second QEMU while one is attached is refused with EBUSY, which QEMU reports',
          host: async (ctx) => {
            await until("the first boot's session ends", () => sessionsEnded(ctx) >= 1, 60);
            const before = sessionsEnded(ctx);
            attached = ctx.startGuest('attached', { timeoutSec: 400 });
            await until('the attached guest starts its transfer', () => began(attached!), 300);
            const t0 = Date.now();
            const second = ctx.startGuest('second', { timeoutSec: 60 });
            const exit = await second.done;
            const ms = Date.now() - t0;
            if (exit.code === 0 || exit.timedOut)
              return {
                fail: `the second QEMU ran on (${exit.timedOut ? 'killed at its deadline' : 'exit 0'}).`,
              };
            if (!/version reply: Device or resource busy/.test(exit.stderr))
              return { fail: `the second QEMU did not report EBUSY; it said:\n${exit.stderr.trim()}` };
            if (/timed out/.test(exit.stderr)) return { fail: `QEMU timed out:\n${exit.stderr.trim()}` };
            if (sessionsEnded(ctx) !== before)
              return {
                fail: 'a session ended while the second QEMU was refused: the attached one was disturbed.',
              };
            if (!/refused with EBUSY/.test(ctx.serverLog('mtty')))
              return { fail: 'the server did not log the refusal.' };
            return { note: `refused after ${ms} ms: ${exit.stderr.trim().split('\n').pop()}` };
          },
        },
        {
          name: 'QEMU killed in the middle of a transfer, then a new QEMU: served, with the device reset',
          host: async (ctx) => {
            const victim = attached;
            if (!victim) return { skip: 'the attached guest of the previous check did not start.' };
            const before = sessionsEnded(ctx);
            // The transfer takes seconds: kill while it runs.
            await new Promise((r) => setTimeout(r, 1500));
            if (status(victim) !== undefined)
              return { skip: 'the transfer finished before the kill; nothing was cut in the middle.' };
            victim.kill();
            const killed = await victim.done;
            await until('the server ends the killed session', () => sessionsEnded(ctx) > before, 30);
            const line =
              ctx
                .serverLog('mtty')
                .split('\n')
                .filter((l) => ENDED_LINE.test(l))
                .pop() ?? '';
            const after = ctx.startGuest('after', { timeoutSec: 400 });
            const exit = await after.done;
            const st = status(after);
            if (st !== 0)
              return {
                fail: `the guest after the kill did not loop back (status ${st}; QEMU ${exit.code ?? exit.signal}):\n${parseResults(after.results()).checks.get(LOOPBACK)?.lines.join('\n') ?? after.console().slice(-2000)}`,
              };
            return {
              note: `killed by ${killed.signal}; server: ${line.trim()}; the next guest: ${parseResults(after.results()).checks.get(LOOPBACK)?.lines.at(-1) ?? ''}`,
            };
          },
        },
        {
          name: '50,000 posted writes in a burst reach the card in order',
          script: checkScript('vfio-user/io-burst.sh', { WRITES: 50000 }),
          timeoutSec: 120,
          // QEMU coalesces posted writes into REGION_WRITE_MULTI only once more than 1024 wait in
          // its send queue (VFIO_USER_OUT_HIGH); under TCG each outb costs QEMU far more than the
          // server takes to apply a write, so how many it sent is a note, not a condition.
          host: (ctx) => {
            const flushes = ctx.qemuTrace
              .split('\n')
              .filter((l) => /vfio_user_wrmulti.*flush/.test(l)).length;
            const f = ctx.guest?.facts ?? {};
            return {
              note: `${f.writes} writes in ${f.seconds} s, the last read back; QEMU sent ${flushes} REGION_WRITE_MULTI messages`,
            };
          },
        },
      ],
    },
  ],
});
