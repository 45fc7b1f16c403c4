import { describe, expect, it } from 'vitest';
import { type ChildDevice, parseOpRegion, parseVbt, toJsonValue, type Vbt } from '../src/index.js';
import { type Fixture, fixtureSuite, haveFixtures, loadFixtures } from './fixtures.js';

const fixtures = loadFixtures();

function vbtOf(f: Fixture): Vbt {
  if (f.facts.layout.vbt_offset_in_file === 0) return parseVbt(f.bytes);
  const vbt = parseOpRegion(f.bytes).vbt;
  if (!vbt) throw new Error(`${f.name}: no VBT found in the OpRegion`);
  return vbt;
}

const yn = (b: boolean) => (b ? 'yes' : 'no');
const hex2 = (n: number) => `0x${n.toString(16).padStart(2, '0')}`;
const hex4 = (n: number) => `0x${n.toString(16).padStart(4, '0')}`;
/** The decoder prints enumerations as "text (0xN)": compare the number in the parentheses. */
const paren = (n: number) => ({ paren: n });
type Expect = string | { paren: number };

function compareField(block: string, label: string, decoder: string, expected: Expect) {
  if (typeof expected === 'string') {
    expect(decoder, `block ${block} "${label}"`).toBe(expected);
  } else {
    const m = /\(0x([0-9a-f]+)\)$/.exec(decoder);
    expect(m, `block ${block} "${label}" = "${decoder}" ends in (0xN)`).not.toBeNull();
    expect(Number.parseInt(m![1], 16), `block ${block} "${label}"`).toBe(expected.paren);
  }
}

function expectedFields(vbt: Vbt): Record<string, Record<string, Expect>> {
  const gf = vbt.generalFeatures;
  const gd = vbt.generalDefinitions;
  const df = vbt.driverFeatures;
  const lo = vbt.lfpOptions;
  const out: Record<string, Record<string, Expect>> = {};
  if (gf) {
    out['1'] = {
      'Panel fitting': paren(gf.panelFitting),
      Flexaim: yn(gf.flexaim),
      Message: yn(gf.msgEnable),
      'Clear screen': String(gf.clearScreen),
      'DVO color flip required': yn(gf.colorFlip),
      'External VBT': yn(gf.downloadExtVbt),
      'LVDS SSC Enable': yn(gf.enableSsc),
      'LVDS SSC frequency': paren(gf.sscFreq),
      'LFP on override': yn(gf.enableLfpOnOverride),
      'Disable SSC on clone': yn(gf.disableSscDdt),
      'Underscan support for VGA timings': yn(gf.underscanVgaTimings),
      'Dynamic CD clock': yn(gf.displayClockMode),
      'Hotplug support in VBIOS': yn(gf.vbiosHotplugSupport),
      'Disable smooth vision': yn(gf.disableSmoothVision),
      'Single DVI for CRT/DVI': yn(gf.singleDvi),
      'Enable 180 degree rotation': yn(gf.rotate180),
      'Inverted FDI Rx polarity': yn(gf.fdiRxPolarityInverted),
      'Extended VBIOS mode': yn(gf.vbiosExtendedMode),
      'Copy iLFP DTD to SDVO LVDS DTD': yn(gf.copyIlfpDtdToSdvoLvdsDtd),
      'Best fit panel timing algorithm': yn(gf.panelBestFitTiming),
      'Ignore strap state': yn(gf.ignoreStrapState),
      'Legacy monitor detect': yn(gf.legacyMonitorDetect !== 0),
      'Integrated CRT': yn(gf.intCrtSupport),
      'Integrated TV': yn(gf.intTvSupport),
      'Integrated EFP': yn(gf.intEfpSupport),
      'DP SSC enable': yn(gf.dpSscEnable),
      'DP SSC frequency': paren(gf.dpSscFreq),
      'DP SSC dongle supported': yn(gf.dpSscDongleSupported),
    };
  }
  if (gd) {
    out['2'] = {
      'CRT DDC GMBUS addr': hex2(gd.crtDdcGmbusPin),
      'Use DPMS on AIM devices': yn(gd.dpmsAim),
      'Skip CRT detect at boot': yn(gd.skipBootCrtDetect),
      'Use Non ACPI DPMS CRT power states': yn(gd.dpmsAcpi),
      'Boot display type': hex4(gd.bootDisplay),
      'Child device size': String(gd.childDeviceSize),
      'Child device count': String(gd.childDevices.length),
    };
  }
  if (df) {
    out['12'] = {
      'Use 00000110h ID for Primary LFP': yn(df.primaryLfpId),
      'Enable Sprite in Clone Mode': yn(df.spriteInClone),
      'Driver INT 15h hook': yn(df.int15hHook),
      'Dual View Zoom': yn(df.dualViewZoom),
      'Hot Plug DVO': yn(df.hotplugDvo),
      'Allow display switching when in Full Screen DOS': yn(df.allowDisplaySwitchDos),
      'Allow display switching when DVD active': yn(df.allowDisplaySwitchDvd),
      'Boot Device Algorithm': df.bootDeviceAlgorithm ? 'driver default' : 'os default',
      'Boot Mode X': String(df.bootModeX),
      'Boot Mode Y': String(df.bootModeY),
      'Boot Mode Bpp': String(df.bootModeBpp),
      'Boot Mode Refresh': String(df.bootModeRefresh),
      'Enable LFP as primary': yn(df.enableLfpPrimary),
      'Selective Mode Pruning': yn(df.selectiveModePruning),
      'Dual-Frequency Graphics Technology': yn(df.dualFrequency),
      'Default Render Clock Frequency': df.renderClockFreq ? 'low' : 'high',
      'NT 4.0 Dual Display Clone Support': yn(df.ntCloneSupport),
      'Default Power Scheme user interface': df.powerSchemeUi ? '3rd party' : 'CUI',
      'Sprite Display Assignment when Overlay is Active in Clone Mode': df.spriteDisplayAssign
        ? 'primary'
        : 'secondary',
      'Display Maintain Aspect Scaling via CUI': yn(df.cuiAspectScaling),
      'Preserve Aspect Ratio': yn(df.preserveAspectRatio),
      'Enable SDVO device power down': yn(df.sdvoDevicePowerDown),
      'CRT hotplug': yn(df.crtHotplug),
      'LVDS config': paren(df.lvdsConfig),
      'TV hotplug': yn(df.tvHotplug),
      'Display subsystem enable': yn(df.displaySubsystemEnable),
      'Embedded platform': yn(df.embeddedPlatform),
      'Define Display statically': yn(df.staticDisplay),
      'Legacy CRT max X': String(df.legacyCrtMaxX),
      'Legacy CRT max Y': String(df.legacyCrtMaxY),
      'Legacy CRT max refresh': String(df.legacyCrtMaxRefresh),
      'Internal source termination for HDMI': yn(df.hdmiTermination),
      'CEA 861-D HDMI support': yn(df.cea861dHdmiSupport),
      'Self refresh enable': yn(df.selfRefreshEnable),
      'Custom VBT number': `0x${df.customVbtVersion.toString(16)}`,
      'PC Features field validity': yn(df.pcFeatureValid),
      'Dynamic Media Refresh Rate Switching (DMRRS)': yn(df.dmrrsEnabled),
      'Intermediate Pixel Storage (IPS)': yn(df.ipsEnabled),
      'Panel Self Refresh (PSR)': yn(df.psrEnabled),
      'Turbo Boost Technology': yn(df.tbtEnabled),
      'Graphics Power Management (GPMT)': yn(df.gpmtEnabled),
      'Graphics Render Standby (RS)': yn(df.grsEnabled),
      'Dynamic Refresh Rate Switching (DRRS)': yn(df.drrsEnabled),
      'Automatic Display Brightness (ADB)': yn(df.adbEnabled),
      'DxgkDDI Backlight Control (DxgkDdiBLC)': yn(df.bltcltEnabled),
      'Display Power Saving Technology (DPST)': yn(df.dpstEnabled),
      'Smart 2D Display Technology (S2DDT)': yn(df.s2ddtEnabled),
      'Rapid Memory Power Management (RMPM)': yn(df.rmpmEnabled),
    };
  }
  if (lo) {
    out['40'] = {
      'Panel type': String(lo.panelType),
      'LVDS EDID available': yn(lo.lvdsEdid),
      'Pixel dither': yn(lo.pixelDither),
      'PFIT auto ratio': yn(lo.pfitRatioAuto),
      'PFIT enhanced graphics mode': yn(lo.pfitGfxModeEnhanced),
      'PFIT enhanced text mode': yn(lo.pfitTextModeEnhanced),
      'PFIT mode': String(lo.pfitMode),
    };
    if (lo.panelType2 !== undefined) out['40']['Panel type 2'] = String(lo.panelType2);
  }
  return out;
}

/** The child devices intel_vbt_decode printed (it prints only non-empty slots), label -> value. */
function decodedChildren(decodeText: string): Record<string, string>[] {
  const start = decodeText.indexOf('BDB block 2 (');
  if (start < 0) return [];
  const end = decodeText.indexOf('\nBDB block ', start + 1);
  const section = decodeText.slice(start, end < 0 ? undefined : end);
  const children: Record<string, string>[] = [];
  for (const line of section.split('\n')) {
    if (line.trim() === 'Child device info:') {
      children.push({});
      continue;
    }
    const m = /^\t\t([^\t:][^:]*): (.*)$/.exec(line);
    if (m && children.length > 0) children[children.length - 1][m[1]] = m[2];
  }
  return children;
}

const CHILD_LABELS: Record<string, keyof ChildDevice> = {
  'Device handle': 'handle',
  'Device type': 'deviceType',
  'I2C speed': 'i2cSpeed',
  'DVO Port': 'dvoPort',
  'AIM I2C pin': 'i2cPin',
  'AIM Slave address': 'slaveAddr',
  'DDC pin': 'ddcPin',
  'EDID buffer ptr': 'edidPtr',
  'DVO config': 'dvoConfig',
  'HPD sense invert': 'hpdInvert',
  'Iboost enable': 'iboost',
  'Onboard LSPCON': 'lspcon',
  'Lane reversal': 'laneReversal',
  'EFP routed through dock': 'efpRouted',
  'Aux channel': 'auxChannel',
  'Dongle detect': 'dongleDetect',
  'Integrated encoder instead of SDVO': 'integratedEncoder',
  'Hotplug connect status': 'hpdStatus',
  'SDVO stall signal available': 'sdvoStall',
  'Pipe capabilities': 'pipeCap',
  'DVO wiring': 'dvoWiring',
  'DVO2 wiring': 'mipiBridgeType',
  'Device class extension': 'extendedType',
  'DVO function': 'dvoFunction',
  'DP USB type C support': 'dpUsbTypeC',
  '2X DP GPIO index': 'dpGpioIndex',
  '2X DP GPIO pin number': 'dpGpioPinNum',
};

/** A decoder value as a number or boolean: "(0xNN)" at the end, a leading 0x, yes/no, or decimal. */
function decoderValue(text: string): number | boolean | undefined {
  const p = /\((0x[0-9a-f]+)\)$/.exec(text);
  if (p) return Number.parseInt(p[1], 16);
  const h = /^(0x[0-9a-f]+)/.exec(text);
  if (h) return Number.parseInt(h[1], 16);
  if (text === 'yes' || text === 'no') return text === 'yes';
  if (/^\d+$/.test(text)) return Number(text);
  return undefined;
}

describe.skipIf(!haveFixtures)(fixtureSuite('VBT fixtures against intel_vbt_decode'), () => {
  it('finds at least one fixture with facts', () => {
    expect(fixtures.length).toBeGreaterThan(0);
  });

  for (const f of fixtures) {
    describe(f.name, () => {
      it('parses, with the VBT and BDB headers of facts.json', () => {
        const vbt = vbtOf(f);
        const h = f.facts.vbt_header;
        expect(vbt.header).toEqual({
          signature: h.signature,
          version: h.version,
          headerSize: h.header_size,
          vbtSize: h.vbt_size,
          checksum: Number.parseInt(h.checksum_byte, 16),
          bdbOffset: h.bdb_offset,
          aimOffsets: h.aim_offsets,
        });
        expect(vbt.bdb).toEqual({
          signature: f.facts.bdb_header.signature,
          version: f.facts.bdb_header.version,
          headerSize: f.facts.bdb_header.header_size,
          bdbSize: f.facts.bdb_header.bdb_size,
        });
        if (f.facts.layout.bytes_after_vbt_size_in_file !== null) {
          expect(vbt.trailingBytes).toBe(f.facts.layout.bytes_after_vbt_size_in_file);
        }
      });

      it('reports the checksum as facts.json computes it, warning (not failing) when it is wrong', () => {
        const vbt = vbtOf(f);
        expect(vbt.checksum).toEqual({ byteSum: f.facts.checksum.sum_mod_256, ok: f.facts.checksum.ok });
        expect(vbt.warnings.some((w) => w.startsWith('checksum'))).toBe(!f.facts.checksum.ok);
      });

      it('lists every block in file order with its id, size and offset', () => {
        const vbt = vbtOf(f);
        expect(vbt.blocks.map((b) => [b.id, b.size, b.offset])).toEqual(
          f.facts.blocks_in_file_order.map((b) => [b.id, b.size, b.offset_in_vbt]),
        );
      });

      it('marks exactly the blocks an i915-style walk misses (past bdb_size)', () => {
        const vbt = vbtOf(f);
        expect(vbt.blocks.map((b) => !b.pastBdbSize)).toEqual(
          f.facts.blocks_in_file_order.map((b) => b.found_by_i915_style_walk),
        );
        expect(vbt.blocks.filter((b) => b.pastBdbSize).map((b) => b.id)).toEqual(
          f.facts.decoder.blocks_in_file_but_not_seen_by_decoder,
        );
      });

      it('sees the same set of blocks as the decoder, apart from the ones it generates or drops', () => {
        const vbt = vbtOf(f);
        const ours = new Set(vbt.blocks.filter((b) => !b.pastBdbSize).map((b) => b.id));
        for (const id of f.facts.decoder.blocks_seen_by_decoder_but_not_in_file) ours.add(id);
        expect([...ours].sort((a, b) => a - b)).toEqual(f.facts.decoder.blocks_present_as_printed);
      });

      it('decodes the key fields of blocks 1, 2, 12 and 40 as the decoder printed them', () => {
        const vbt = vbtOf(f);
        const expected = expectedFields(vbt);
        let compared = 0;
        for (const [key, fields] of Object.entries(f.facts.decoder.key_fields)) {
          if (typeof fields === 'number') continue;
          const block = key.replace('block_', '');
          expect(expected[block], `block ${block} decoded`).toBeDefined();
          for (const [label, value] of Object.entries(fields)) {
            expect(expected[block], `block ${block} field "${label}" is decoded`).toHaveProperty([label]);
            compareField(block, label, value, expected[block][label]);
            compared++;
          }
        }
        expect(compared).toBeGreaterThan(10);
      });

      it('decodes every top-level field the decoder printed for blocks 1, 2, 12 and 40', () => {
        const vbt = vbtOf(f);
        const expected = expectedFields(vbt);
        for (const block of ['1', '2', '12', '40']) {
          const fields = f.facts.decoder.all_top_level_fields_by_block[block];
          if (!fields) {
            expect(expected[block], `block ${block} absent from both`).toBeUndefined();
            continue;
          }
          for (const [label, value] of Object.entries(fields)) {
            if (label === 'Child device info') continue;
            expect(expected[block], `block ${block} field "${label}" is decoded`).toHaveProperty([label]);
            compareField(block, label, value as string, expected[block][label]);
          }
        }
      });

      it('decodes the child devices the decoder printed (handle, type, port, DDC, AUX and more)', () => {
        const vbt = vbtOf(f);
        const printed = decodedChildren(f.decodeText);
        expect(printed.length).toBe(f.facts.decoder.key_fields.child_devices_printed_in_block_2);
        const present = (vbt.generalDefinitions?.childDevices ?? []).filter((c) => c.deviceType !== 0);
        expect(present.length).toBe(printed.length);
        let compared = 0;
        printed.forEach((labels, i) => {
          for (const [label, key] of Object.entries(CHILD_LABELS)) {
            if (!(label in labels)) continue;
            const want = decoderValue(labels[label]);
            expect(want, `child ${i} "${label}" = "${labels[label]}" is readable`).not.toBeUndefined();
            expect(present[i][key], `child ${i} "${label}"`).toBe(want);
            compared++;
          }
        });
        // At least handle, type, port, DDC pin and AUX channel for each printed child.
        expect(compared).toBeGreaterThanOrEqual(printed.length * 5);
      });

      it('serialises to JSON with raw blocks as hex and no bigint', () => {
        const vbt = vbtOf(f);
        const text = JSON.stringify(toJsonValue(vbt));
        const back = JSON.parse(text);
        expect(back.blocks.length).toBe(vbt.blocks.length);
        expect(back.blocks[0].data).toMatch(/^([0-9a-f]{2})*$/);
        expect(back.blocks[0].data.length).toBe(vbt.blocks[0].size * 2);
        expect(back.header.vbtSize).toBe(vbt.header.vbtSize);
      });
    });
  }
});
