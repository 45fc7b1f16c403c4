/**
 * The NVIDIA vGPU: each board's first type in one QEMU (T4-1: nvidia-319 on an mdev parent;
 * RTX 6000 Ada: nvidia-941 on an SR-IOV VF), each served by its own `vfiokit serve`. The guest
 * loads no NVIDIA driver (there is none for this plugin's ABI): it does what a driver's first
 * steps do, from user space, and QEMU's trace shows what trapped and what was mapped.
 */
import { checkScript, defineSuite, type HostCheckContext, type ServedDevice } from '../suite.js';
import { barMappings, dmaBufWarnings, trappedAccesses, trappedList } from './qemu-trace.js';
import { sessionTraps } from './server-log.js';

/** PCI IDs from pci.ids: 10de:1eb8 Tesla T4 (a 3D controller), 10de:26b1 RTX 6000 Ada Generation (VGA). */
const boards = [
  {
    id: 't4',
    device: '@vfiokit/nvidia-vgpu:nvidia-319',
    addr: '05.0',
    ids: '10de:1eb8',
    cls: '3D controller [0302]',
    name: 'T4-4C',
  },
  {
    id: 'ada',
    device: '@vfiokit/nvidia-vgpu:nvidia-941',
    addr: '06.0',
    ids: '10de:26b1',
    cls: 'VGA compatible controller [0300]',
    name: 'RTX6000-Ada-1Q',
  },
] as const;
const devices: ServedDevice[] = boards.map(({ id, device, addr }) => ({ id, device, addr }));
/** Bytes of pattern through BAR1 (the framebuffer of the smallest profile is 256 KiB here). */
const BAR1_BYTES = 256 << 10;
/** Bytes of pattern through BAR3. */
const BAR3_BYTES = 1 << 20;

function trapNotes(ctx: HostCheckContext): string {
  return boards
    .map((b) => {
      const socket = ctx.socket(b.id);
      const t = trappedAccesses(ctx.qemuTrace, socket);
      const maps = (bar: number) =>
        barMappings(ctx.qemuTrace, socket, bar)
          .map((m) => `[0x${m.start.toString(16)}-0x${m.end.toString(16)}]`)
          .join(' ') || 'none';
      return `${b.name}: trapped BAR0 ${t.get(0) ?? 0}, BAR1 ${t.get(1) ?? 0}, BAR3 ${t.get(3) ?? 0}; mapped BAR0 ${maps(0)}, BAR1 ${maps(1)}, BAR3 ${maps(3)}`;
    })
    .join('\n');
}

/** The mailbox page of BAR0 and BAR1 are mapped and never trapped; BAR0's registers do trap. */
function mappedAsClaimed(ctx: HostCheckContext) {
  const problems: string[] = [];
  for (const b of boards) {
    const socket = ctx.socket(b.id);
    const t = trappedAccesses(ctx.qemuTrace, socket);
    const maps = (bar: number) => barMappings(ctx.qemuTrace, socket, bar);
    if (!maps(0).some((m) => m.start === 0x1000 && m.end === 0x1fff))
      problems.push(`${b.name}: QEMU did not map BAR0's mailbox page [0x1000-0x1fff]`);
    const mailboxTraps = trappedList(ctx.qemuTrace, socket).filter(
      (a) => a.region === 0 && a.offset >= 0x1000 && a.offset < 0x2000,
    ).length;
    if (mailboxTraps > 0) problems.push(`${b.name}: ${mailboxTraps} mailbox accesses trapped`);
    if (maps(1).length === 0) problems.push(`${b.name}: QEMU did not map BAR1`);
    if ((t.get(1) ?? 0) > 0) problems.push(`${b.name}: ${t.get(1)} BAR1 accesses trapped`);
    if ((t.get(0) ?? 0) === 0)
      problems.push(`${b.name}: no BAR0 register access trapped: the trace is not recording`);
  }
  const note = `${trapNotes(ctx)}\n${serverSawNone(ctx, 1, problems)}`;
  return problems.length > 0 ? { fail: problems.join('\n'), note } : { note };
}

/** The server's own count of the session: no access to `bar` reached it. */
function serverSawNone(ctx: HostCheckContext, bar: number, problems: string[]): string {
  return boards
    .map((b) => {
      const c = sessionTraps(ctx.serverLog(b.id))?.get(bar);
      if (!c) problems.push(`${b.name}: the server printed no access count for BAR${bar}`);
      else if (c.reads + c.writes > 0)
        problems.push(`${b.name}: the server served ${c.reads} reads/${c.writes} writes of BAR${bar}`);
      return `${b.name}: the server served BAR${bar} ${c?.reads}/${c?.writes}`;
    })
    .join('\n');
}

/** BAR3 mapped whole and never trapped, as QEMU's trace and the server's count both say. */
function bar3Mapped(ctx: HostCheckContext) {
  const problems: string[] = [];
  for (const b of boards) {
    const traps = trappedAccesses(ctx.qemuTrace, ctx.socket(b.id)).get(3) ?? 0;
    if (barMappings(ctx.qemuTrace, ctx.socket(b.id), 3).length === 0)
      problems.push(`${b.name}: QEMU did not map BAR3`);
    if (traps > 0) problems.push(`${b.name}: ${traps} BAR3 accesses trapped`);
  }
  const note = `${trapNotes(ctx)}\n${serverSawNone(ctx, 3, problems)}`;
  return problems.length > 0 ? { fail: problems.join('\n'), note } : { note };
}

export function dmaBufUnderstood(ids: readonly string[]) {
  return (ctx: HostCheckContext) => {
    const notes: string[] = [];
    const problems: string[] = [];
    for (const id of ids) {
      for (const w of dmaBufWarnings(ctx.qemuLog, ctx.qemuTrace, ctx.socket(id))) {
        notes.push(
          `${id}: BAR ${w.bar}: QEMU's vfio-user client has no dma-buf; ${w.mapped ? 'mapped anyway' : 'NOT mapped'}`,
        );
        if (!w.mapped) problems.push(`${id}: QEMU warned about BAR ${w.bar} and did not map it`);
      }
    }
    if (notes.length === 0) notes.push('QEMU printed no dma-buf warning');
    return problems.length > 0
      ? { fail: problems.join('\n'), note: notes.join('\n') }
      : { note: notes.join('\n') };
  };
}

export default defineSuite({
  name: 'nvidia-vgpu',
  boots: [
    {
      name: 'first-types',
      devices,
      env: {
        VGPUS: boards.map((b) => b.id).join(' '),
        ...Object.fromEntries(boards.map((b) => [`IDS_${b.id}`, b.ids])),
        ...Object.fromEntries(boards.map((b) => [`CLASS_${b.id}`, b.cls])),
      },
      qemuTrace: ['vfio_region_read', 'vfio_region_write', 'vfio_region_mmap'],
      checks: [
        {
          name: "each board's first type attaches: NVIDIA IDs, BAR0, BAR1 and BAR3, MSI",
          script: checkScript('nvidia-vgpu/identity.sh'),
        },
        {
          name: 'BAR0 registers and the RPC handshake through the mapped mailbox; a channel copies and fills through BAR1',
          script: checkScript('nvidia-vgpu/rpc.sh'),
        },
        {
          name: 'BAR1 and the mailbox page are direct-mapped: a pattern reads back through BAR1 and neither trapped',
          script: checkScript('nvidia-vgpu/bars.sh', { BAR: 1, BYTES: BAR1_BYTES }),
          host: mappedAsClaimed,
        },
        {
          name: 'BAR3 is direct-mapped: a pattern reads back and no access trapped',
          script: checkScript('nvidia-vgpu/bars.sh', { BAR: 3, BYTES: BAR3_BYTES }),
          host: bar3Mapped,
        },
        {
          name: "QEMU's 'failed to create dma-buf' is its vfio-user client's, and the BARs are mapped regardless",
          host: dmaBufUnderstood(boards.map((b) => b.id)),
        },
      ],
    },
  ],
});
