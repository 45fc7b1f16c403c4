/**
 * A synthetic but well-formed VBT, so the plugin works with no files: blocks 1 (general
 * features), 2 (general definitions with three child devices: eDP on port A, HDMI on port B,
 * DisplayPort on port D), 12 (driver features) and 40 (LFP options, panel type 2).
 * Child-device offsets follow struct child_device_config (linux intel_vbt_defs.h); the device
 * types and ports are i915's DEVICE_TYPE_* and DVO_PORT_* values.
 */
import { buildVbt } from './vbt/build.js';

const CHILD_DEVICE_SIZE = 38; // sizeof(struct child_device_config) for BDB 196+ (intel_vbt_defs.h)
const BDB_VERSION = 221;

// intel_vbt_defs.h DEVICE_TYPE_*, DVO_PORT_*, DP_AUX_*, and the GMBUS pins of Skylake (intel_gmbus.c)
const DEVICE_TYPE_INT_LFP = 0x1806; // eDP panels are listed with this type
const DEVICE_TYPE_HDMI = 0x60d2;
const DEVICE_TYPE_DP = 0x68c6;
const DVO_PORT_HDMIB = 1;
const DVO_PORT_DPD = 9;
const DVO_PORT_DPA = 10;
const DP_AUX_A = 0x40;
const DP_AUX_B = 0x10;
const DP_AUX_D = 0x30;

function child(handle: number, type: number, port: number, ddcPin: number, aux: number): Uint8Array {
  const c = new Uint8Array(CHILD_DEVICE_SIZE);
  c[0] = handle & 0xff;
  c[1] = handle >> 8;
  c[2] = type & 0xff;
  c[3] = type >> 8;
  c[16] = port; // dvo_port
  c[19] = ddcPin; // ddc_pin
  c[25] = aux; // aux_channel
  c[27] = 1 << 5; // integrated_encoder
  return c;
}

/** The synthetic VBT's panel type (block 40), so tests can check it. */
export const SYNTHETIC_PANEL_TYPE = 2;

export function syntheticVbt(): Uint8Array {
  const children = [
    child(0x0008, DEVICE_TYPE_INT_LFP, DVO_PORT_DPA, 0, DP_AUX_A),
    child(0x0100, DEVICE_TYPE_HDMI, DVO_PORT_HDMIB, 5, DP_AUX_B),
    child(0x0400, DEVICE_TYPE_DP, DVO_PORT_DPD, 6, DP_AUX_D),
  ];
  const defs = new Uint8Array(5 + CHILD_DEVICE_SIZE * children.length);
  defs[4] = CHILD_DEVICE_SIZE;
  for (const [i, c] of children.entries()) defs.set(c, 5 + CHILD_DEVICE_SIZE * i);
  return buildVbt(
    [
      { id: 1, data: new Uint8Array([0x0f, 0x41, 0x00, 0x01, 0x00]) },
      { id: 2, data: defs },
      { id: 12, data: new Uint8Array(19) },
      { id: 40, data: new Uint8Array([SYNTHETIC_PANEL_TYPE, 0, 0, 0]) },
    ],
    { platform: 'SYNTHETIC', bdbVersion: BDB_VERSION },
  );
}
