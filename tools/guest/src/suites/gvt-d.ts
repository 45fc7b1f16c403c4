/**
 * GVT-d: the IGD served at 00:02.0 with a real VBT from ../shared (Google Chell, Skylake) as
 * its host's. QEMU 10.2's vfio-user-pci has none of vfio-pci's x-igd-* properties, so what
 * QEMU's IGD support does with the OPREGION region (copy it into guest RAM, point ASLS at it)
 * cannot run; the guest sees a plain VGA function, and the OpRegion is read as any vfio-user
 * client reads it.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connectVfioUser } from '@vfiokit/vfio-user';
import { checkScript, defineSuite, type HostCheckContext } from '../suite.js';

/** The fixture: a Skylake board's VBT, matching the plugin's default host profile (HD Graphics 530). */
const VBT_FIXTURE = 'fixtures/vbt/coreboot__google__glados__variants__chell__data.vbt';
/** linux/vfio.h: VFIO_REGION_TYPE_PCI_VENDOR_TYPE | PCI_VENDOR_ID_INTEL, VFIO_REGION_SUBTYPE_INTEL_IGD_OPREGION. */
const INTEL_VENDOR_REGION_TYPE = 0x80008086;
const IGD_OPREGION_SUBTYPE = 1;
/** Intel OpRegion spec (and i915's intel_opregion.c): header fields and the VBT mailbox. */
const OPREGION_SIGNATURE = 'IntelGraphicsMem';
const OPREGION_MBOXES = 0x58;
const OPREGION_ASLE_VBT = 0x400;
const OPREGION_ASLE_VBT_SIZE = 6 * 1024;

function sharedDir(root: string): string {
  return join(root, '..', 'shared');
}

/** The OPREGION region read back over vfio-user, compared with the host's VBT byte for byte. */
async function opRegionMatchesHost(ctx: HostCheckContext) {
  const vbtPath = join(sharedDir(ctx.root), VBT_FIXTURE);
  const hostVbt = new Uint8Array(readFileSync(vbtPath));
  const dev = await connectVfioUser(ctx.socket('igd'), { timeoutMs: 10_000 });
  try {
    const info = dev.info();
    let index = -1;
    for (let i = 0; i < info.numRegions; i++) {
      const r = dev.regionInfo(i);
      if (r?.type?.type === INTEL_VENDOR_REGION_TYPE && r.type.subtype === IGD_OPREGION_SUBTYPE) index = i;
    }
    if (index < 0) return { fail: 'no region of type Intel/IGD_OPREGION in REGION_INFO' };
    const r = dev.regionInfo(index)!;
    const bytes = new Uint8Array(r.size);
    dev.read(index, 0, bytes);
    const dv = new DataView(bytes.buffer);
    const problems: string[] = [];
    const sig = new TextDecoder().decode(bytes.subarray(0, 16));
    if (sig !== OPREGION_SIGNATURE) problems.push(`the signature is "${sig}"`);
    const sizeKiB = dv.getUint32(0x10, true);
    const version = `${bytes[0x17]}.${bytes[0x16]}`;
    const mboxes = dv.getUint32(OPREGION_MBOXES, true);
    // MBOX bit 3 (mailbox 4): the VBT is in the ASLE VBT area.
    if ((mboxes & (1 << 3)) === 0)
      problems.push(`MBOX 0x${mboxes.toString(16)} does not announce mailbox 4 (VBT)`);
    const vbt = bytes.subarray(OPREGION_ASLE_VBT, OPREGION_ASLE_VBT + OPREGION_ASLE_VBT_SIZE);
    const vbtSize = new DataView(hostVbt.buffer, hostVbt.byteOffset).getUint16(0x18, true);
    if (Buffer.compare(Buffer.from(vbt.subarray(0, hostVbt.length)), Buffer.from(hostVbt)) !== 0)
      problems.push('mailbox 4 does not hold the host VBT byte for byte');
    const sum = vbt.subarray(0, vbtSize).reduce((s, b) => (s + b) & 0xff, 0);
    if (sum !== 0) problems.push(`the VBT's bytes sum to 0x${sum.toString(16)} mod 256, not 0`);
    const rom = dev.regionInfo(6)?.size ?? 0;
    const note = `ROM BAR region: ${rom === 0 ? 'none (size 0)' : `${rom} bytes`}; OPREGION region ${index}: ${r.size} bytes, "${sig}", ${sizeKiB} KiB, version ${version}, MBOX 0x${mboxes.toString(16)}, VBT "${new TextDecoder().decode(vbt.subarray(0, 20)).trimEnd()}" ${vbtSize} bytes, checksum byte 0x${vbt[0x1a].toString(16)} (sum ${sum})`;
    return problems.length > 0 ? { fail: problems.join('\n'), note } : { note };
  } finally {
    dev.disconnect();
  }
}

/**
 * The ROM BAR as the server offers it and the guest sees it: with no ROM region (size 0), the
 * only ROM a guest sees is the legacy shadow Linux's x86 VGA fixup (pci_fixup_video) gives a
 * VGA function at 0xc0000, 128 KiB, which holds no image (-vga none: no video BIOS there).
 */
async function romAsServed(ctx: HostCheckContext) {
  const dev = await connectVfioUser(ctx.socket('igd'), { timeoutMs: 10_000 });
  let rom: number;
  try {
    rom = dev.regionInfo(6)?.size ?? 0;
  } finally {
    dev.disconnect();
  }
  const f = ctx.guest?.facts ?? {};
  const note = `server ROM region: ${rom} bytes; guest ROM at ${f.rom_at}, ${f.bar6 ?? 'no resource'}, signature ${f.rom_signature}`;
  if (rom === 0) {
    if (Number(f.rom_at) !== 0xc0000 || !f.bar6?.startsWith('131072 '))
      return {
        fail: 'the server has no ROM, yet the guest sees a ROM other than the legacy VGA shadow',
        note,
      };
    if (f.rom_signature === '55aa') return { fail: 'the legacy VGA shadow holds a ROM image', note };
    return { note };
  }
  return f.rom_signature === '55aa'
    ? { note }
    : { fail: 'the server offers a ROM the guest cannot read (no 55aa)', note };
}

/**
 * What QEMU's igd.c would add: the OpRegion copied into guest RAM (fw_cfg etc/igd-opregion)
 * and ASLS pointing at it. vfio-user-pci (hw/vfio-user/pci.c) registers none of vfio-pci's
 * x-igd-opregion/x-igd-gms/x-igd-lpc properties and never calls vfio_probe_igd_*; so the guest's
 * ASLS stays as the device reports it. Passes when ASLS does point at an OpRegion in guest RAM
 * (a QEMU that learned it), skips naming the blocker otherwise.
 */
function guestOpRegion(ctx: HostCheckContext) {
  const asls = ctx.output(IDENTITY)?.facts.asls;
  const found = ctx.output(GUEST_OPREGION)?.facts.opregion_at_asls;
  if (found === 'IntelGraphicsMem') return { note: `ASLS ${asls}: the guest finds the OpRegion` };
  return {
    skip: `blocked on QEMU: vfio-user-pci in QEMU 10.2 has no x-igd-opregion (hw/vfio-user/pci.c registers only x-pci-*, x-send-queued, x-msg-timeout, x-no-posted-writes), so hw/vfio/igd.c never copies the OPREGION region into the guest; ASLS reads ${asls ?? '?'}, the host's value, which vfio-pci passes through and igd.c would replace`,
  };
}

const IDENTITY = 'the IGD at 00:02.0 attaches: Intel VGA IDs, its BARs, what the ROM BAR shows';
const GUEST_OPREGION = 'the guest finds the OpRegion through ASLS with the host VBT';

export default defineSuite({
  name: 'gvt-d',
  boots: [
    {
      name: 'igd',
      devices: [
        {
          id: 'igd',
          device: '@vfiokit/gvt-d:gvt-d-igd',
          addr: '02.0',
          pluginOptions: ['source=fixture', `vbt=../shared/${VBT_FIXTURE}`],
        },
      ],
      env: { IDS: '8086:1912' },
      unavailable: (root) =>
        existsSync(join(sharedDir(root), VBT_FIXTURE))
          ? undefined
          : `the host VBT ../shared/${VBT_FIXTURE} is absent (the shared fixtures are not beside the repository)`,
      checks: [
        { name: IDENTITY, script: checkScript('gvt-d/identity.sh'), host: romAsServed },
        {
          name: 'the OPREGION region a vfio-user client reads is the host’s: signature, mailboxes, VBT and its checksum',
          host: opRegionMatchesHost,
        },
        {
          name: GUEST_OPREGION,
          script: checkScript('gvt-d/opregion.sh'),
          host: guestOpRegion,
        },
      ],
    },
  ],
});
