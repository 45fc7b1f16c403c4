/**
 * Decoders for the BDB blocks a VMM and a test suite care about: 1 (general features),
 * 2 (general definitions and the child-device list), 12 (driver features), 40 (LFP options).
 *
 * Layouts: linux drivers/gpu/drm/i915/display/intel_vbt_defs.h (struct bdb_general_features,
 * bdb_general_definitions, child_device_config, bdb_driver_features, bdb_lvds_options) and IGT
 * tools/intel_vbt_defs.h for the bits i915 leaves reserved. As i915 does, a block shorter than its
 * structure reads as zeros past its end (older BDB versions have shorter blocks), so a decoder never
 * throws and never reads outside the block.
 */

/** Byte at off inside the payload, or 0 past its end. */
function byteAt(p: Uint8Array, off: number): number {
  return off < p.length ? p[off] : 0;
}

function u16At(p: Uint8Array, off: number): number {
  return byteAt(p, off) | (byteAt(p, off + 1) << 8);
}

function bit(v: number, n: number): boolean {
  return ((v >> n) & 1) === 1;
}

/** Block 1 — struct bdb_general_features (5 bytes; later BDB versions append more). */
export interface GeneralFeatures {
  panelFitting: number;
  flexaim: boolean;
  msgEnable: boolean;
  clearScreen: number;
  colorFlip: boolean;
  downloadExtVbt: boolean;
  enableSsc: boolean;
  /** 0 = the lower of the platform's two SSC frequencies (e.g. 96 / 120 MHz), 1 = the higher. */
  sscFreq: number;
  enableLfpOnOverride: boolean;
  disableSscDdt: boolean;
  underscanVgaTimings: boolean;
  /** "Dynamic CD clock". */
  displayClockMode: boolean;
  vbiosHotplugSupport: boolean;
  disableSmoothVision: boolean;
  singleDvi: boolean;
  rotate180: boolean; // BDB 181+
  fdiRxPolarityInverted: boolean;
  vbiosExtendedMode: boolean; // BDB 160+
  copyIlfpDtdToSdvoLvdsDtd: boolean; // BDB 160+
  panelBestFitTiming: boolean; // BDB 160+
  ignoreStrapState: boolean; // BDB 160+
  legacyMonitorDetect: number;
  intCrtSupport: boolean;
  intTvSupport: boolean;
  intEfpSupport: boolean;
  dpSscEnable: boolean;
  dpSscFreq: number;
  dpSscDongleSupported: boolean;
}

export function decodeGeneralFeatures(p: Uint8Array): GeneralFeatures {
  const b0 = byteAt(p, 0);
  const b1 = byteAt(p, 1);
  const b2 = byteAt(p, 2);
  const b4 = byteAt(p, 4);
  return {
    panelFitting: b0 & 3,
    flexaim: bit(b0, 2),
    msgEnable: bit(b0, 3),
    clearScreen: (b0 >> 4) & 7,
    colorFlip: bit(b0, 7),
    downloadExtVbt: bit(b1, 0),
    enableSsc: bit(b1, 1),
    sscFreq: (b1 >> 2) & 1,
    enableLfpOnOverride: bit(b1, 3),
    disableSscDdt: bit(b1, 4),
    underscanVgaTimings: bit(b1, 5),
    displayClockMode: bit(b1, 6),
    vbiosHotplugSupport: bit(b1, 7),
    disableSmoothVision: bit(b2, 0),
    singleDvi: bit(b2, 1),
    rotate180: bit(b2, 2),
    fdiRxPolarityInverted: bit(b2, 3),
    vbiosExtendedMode: bit(b2, 4),
    copyIlfpDtdToSdvoLvdsDtd: bit(b2, 5),
    panelBestFitTiming: bit(b2, 6),
    ignoreStrapState: bit(b2, 7),
    legacyMonitorDetect: byteAt(p, 3),
    intCrtSupport: bit(b4, 0),
    intTvSupport: bit(b4, 1),
    intEfpSupport: bit(b4, 2),
    dpSscEnable: bit(b4, 3),
    dpSscFreq: (b4 >> 4) & 1,
    dpSscDongleSupported: bit(b4, 5),
  };
}

/** One entry of the child-device list — struct child_device_config (33 bytes legacy, up to 40). */
export interface ChildDevice {
  /** Position in the list. */
  index: number;
  handle: number;
  /** DEVICE_TYPE_* bits; 0 means the slot is empty. */
  deviceType: number;
  i2cSpeed: number;
  /** DVO_PORT_* (BDB 155+): 0..3 HDMI-A..D, 4 LVDS, 5 TV, 6 CRT, 7..9 DP-B..D, 10 DP-A, ... */
  dvoPort: number;
  i2cPin: number;
  slaveAddr: number;
  ddcPin: number;
  edidPtr: number;
  dvoConfig: number;
  efpRouted: boolean; // BDB 158+
  laneReversal: boolean; // BDB 184+
  lspcon: boolean; // BDB 192+
  iboost: boolean; // BDB 196+
  hpdInvert: boolean; // BDB 196+
  hdmiSupport: boolean; // BDB 158+
  dpSupport: boolean; // BDB 158+
  tmdsSupport: boolean; // BDB 158+
  /** DP_AUX_*: 0x40 A, 0x10 B, 0x20 C, 0x30 D, 0x50 E, 0x60 F, 0x70 G, 0x80 H, 0x90 I. */
  auxChannel: number;
  dongleDetect: number;
  pipeCap: number;
  sdvoStall: boolean;
  hpdStatus: number;
  integratedEncoder: boolean;
  dvoWiring: number;
  /** dvo2_wiring before BDB 171, mipi_bridge_type from 171. */
  mipiBridgeType: number;
  extendedType: number;
  dvoFunction: number;
  dpUsbTypeC: boolean; // BDB 195+
  tbt: boolean; // BDB 209+
  dpGpioIndex: number; // BDB 195+
  dpGpioPinNum: number; // BDB 195+
  dpIboostLevel: number; // BDB 196+
  hdmiIboostLevel: number; // BDB 196+
  dpMaxLinkRate: number; // BDB 216+
  /** The entry's bytes as stored (childDeviceSize bytes). */
  raw: Uint8Array;
}

function decodeChildDevice(index: number, p: Uint8Array): ChildDevice {
  const flags1 = byteAt(p, 23);
  const flags2 = byteAt(p, 24);
  const caps = byteAt(p, 27);
  const flags3 = byteAt(p, 33);
  const iboost = byteAt(p, 37);
  return {
    index,
    handle: u16At(p, 0),
    deviceType: u16At(p, 2),
    i2cSpeed: byteAt(p, 4),
    dvoPort: byteAt(p, 16),
    i2cPin: byteAt(p, 17),
    slaveAddr: byteAt(p, 18),
    ddcPin: byteAt(p, 19),
    edidPtr: u16At(p, 20),
    dvoConfig: byteAt(p, 22),
    efpRouted: bit(flags1, 0),
    laneReversal: bit(flags1, 1),
    lspcon: bit(flags1, 2),
    iboost: bit(flags1, 3),
    hpdInvert: bit(flags1, 4),
    hdmiSupport: bit(flags2, 0),
    dpSupport: bit(flags2, 1),
    tmdsSupport: bit(flags2, 2),
    auxChannel: byteAt(p, 25),
    dongleDetect: byteAt(p, 26),
    pipeCap: caps & 3,
    sdvoStall: bit(caps, 2),
    hpdStatus: (caps >> 3) & 3,
    integratedEncoder: bit(caps, 5),
    dvoWiring: byteAt(p, 28),
    mipiBridgeType: byteAt(p, 29),
    extendedType: u16At(p, 30),
    dvoFunction: byteAt(p, 32),
    dpUsbTypeC: bit(flags3, 0),
    tbt: bit(flags3, 1),
    dpGpioIndex: byteAt(p, 34),
    dpGpioPinNum: u16At(p, 35),
    dpIboostLevel: iboost & 15,
    hdmiIboostLevel: iboost >> 4,
    dpMaxLinkRate: byteAt(p, 38) & 7,
    raw: p,
  };
}

/** Block 2 — struct bdb_general_definitions: 5 fixed bytes, then the child devices. */
export interface GeneralDefinitions {
  crtDdcGmbusPin: number;
  dpmsAcpi: boolean;
  skipBootCrtDetect: boolean;
  dpmsAim: boolean;
  /** boot_display[2] read as a little-endian u16. */
  bootDisplay: number;
  /** Size of one child-device entry, from the block itself. */
  childDeviceSize: number;
  /** (block size - 5) / childDeviceSize entries, empty slots (deviceType 0) included. */
  childDevices: ChildDevice[];
}

const GENERAL_DEFINITIONS_FIXED = 5; // sizeof(struct bdb_general_definitions) without devices[]

export function decodeGeneralDefinitions(p: Uint8Array, warnings: string[]): GeneralDefinitions {
  const dpms = byteAt(p, 1);
  const childDeviceSize = byteAt(p, 4);
  const childDevices: ChildDevice[] = [];
  const listBytes = Math.max(0, p.length - GENERAL_DEFINITIONS_FIXED);
  if (childDeviceSize === 0) {
    if (listBytes > 0) warnings.push('block 2: child device size is 0, so the child-device list is skipped.');
  } else {
    const count = Math.floor(listBytes / childDeviceSize);
    for (let i = 0; i < count; i++) {
      const start = GENERAL_DEFINITIONS_FIXED + i * childDeviceSize;
      childDevices.push(decodeChildDevice(i, p.subarray(start, start + childDeviceSize)));
    }
    if (listBytes % childDeviceSize !== 0) {
      warnings.push(
        `block 2: ${listBytes % childDeviceSize} byte(s) after the last whole child device are ignored.`,
      );
    }
  }
  return {
    crtDdcGmbusPin: byteAt(p, 0),
    dpmsAcpi: bit(dpms, 0),
    skipBootCrtDetect: bit(dpms, 1),
    dpmsAim: bit(dpms, 2),
    bootDisplay: u16At(p, 2),
    childDeviceSize,
    childDevices,
  };
}

/** Block 12 — struct bdb_driver_features (15–19 bytes depending on BDB version). */
export interface DriverFeatures {
  bootDeviceAlgorithm: number;
  allowDisplaySwitchDvd: boolean;
  allowDisplaySwitchDos: boolean;
  hotplugDvo: boolean;
  dualViewZoom: boolean;
  int15hHook: boolean;
  spriteInClone: boolean;
  primaryLfpId: boolean;
  bootModeX: number;
  bootModeY: number;
  bootModeBpp: number;
  bootModeRefresh: number;
  enableLfpPrimary: boolean;
  selectiveModePruning: boolean;
  dualFrequency: boolean;
  /** 0 high, 1 low. */
  renderClockFreq: number;
  ntCloneSupport: boolean;
  /** 0 CUI, 1 third party. */
  powerSchemeUi: number;
  /** 0 secondary, 1 primary. */
  spriteDisplayAssign: number;
  cuiAspectScaling: boolean;
  preserveAspectRatio: boolean;
  sdvoDevicePowerDown: boolean;
  crtHotplug: boolean;
  /** 0 no LVDS, 1 integrated LVDS, 2 SDVO LVDS, 3 eDP. */
  lvdsConfig: number;
  tvHotplug: boolean;
  hdmiConfig: number;
  staticDisplay: boolean; // BDB 163+
  embeddedPlatform: boolean; // BDB 163+
  displaySubsystemEnable: boolean; // BDB 163+
  legacyCrtMaxX: number;
  legacyCrtMaxY: number;
  legacyCrtMaxRefresh: number;
  hdmiTermination: boolean;
  cea861dHdmiSupport: boolean;
  selfRefreshEnable: boolean;
  customVbtVersion: number; // BDB 155+
  rmpmEnabled: boolean;
  s2ddtEnabled: boolean;
  dpstEnabled: boolean;
  bltcltEnabled: boolean;
  adbEnabled: boolean;
  drrsEnabled: boolean;
  grsEnabled: boolean;
  gpmtEnabled: boolean;
  tbtEnabled: boolean;
  psrEnabled: boolean;
  ipsEnabled: boolean;
  dfpsEnabled: boolean;
  dmrrsEnabled: boolean;
  adtEnabled: boolean;
  hpdWake: boolean;
  pcFeatureValid: boolean;
}

export function decodeDriverFeatures(p: Uint8Array): DriverFeatures {
  const b0 = byteAt(p, 0);
  const f1 = u16At(p, 7);
  const f2 = byteAt(p, 9);
  const f3 = byteAt(p, 15);
  const f4 = u16At(p, 17);
  return {
    bootDeviceAlgorithm: b0 & 1,
    allowDisplaySwitchDvd: bit(b0, 1),
    allowDisplaySwitchDos: bit(b0, 2),
    hotplugDvo: bit(b0, 3),
    dualViewZoom: bit(b0, 4),
    int15hHook: bit(b0, 5),
    spriteInClone: bit(b0, 6),
    primaryLfpId: bit(b0, 7),
    bootModeX: u16At(p, 1),
    bootModeY: u16At(p, 3),
    bootModeBpp: byteAt(p, 5),
    bootModeRefresh: byteAt(p, 6),
    enableLfpPrimary: bit(f1, 0),
    selectiveModePruning: bit(f1, 1),
    dualFrequency: bit(f1, 2),
    renderClockFreq: (f1 >> 3) & 1,
    ntCloneSupport: bit(f1, 4),
    powerSchemeUi: (f1 >> 5) & 1,
    spriteDisplayAssign: (f1 >> 6) & 1,
    cuiAspectScaling: bit(f1, 7),
    preserveAspectRatio: bit(f1, 8),
    sdvoDevicePowerDown: bit(f1, 9),
    crtHotplug: bit(f1, 10),
    lvdsConfig: (f1 >> 11) & 3,
    tvHotplug: bit(f1, 13),
    hdmiConfig: (f1 >> 14) & 3,
    staticDisplay: bit(f2, 0),
    embeddedPlatform: bit(f2, 1),
    displaySubsystemEnable: bit(f2, 2),
    legacyCrtMaxX: u16At(p, 10),
    legacyCrtMaxY: u16At(p, 12),
    legacyCrtMaxRefresh: byteAt(p, 14),
    hdmiTermination: bit(f3, 0),
    cea861dHdmiSupport: bit(f3, 1),
    selfRefreshEnable: bit(f3, 2),
    customVbtVersion: byteAt(p, 16),
    rmpmEnabled: bit(f4, 0),
    s2ddtEnabled: bit(f4, 1),
    dpstEnabled: bit(f4, 2),
    bltcltEnabled: bit(f4, 3),
    adbEnabled: bit(f4, 4),
    drrsEnabled: bit(f4, 5),
    grsEnabled: bit(f4, 6),
    gpmtEnabled: bit(f4, 7),
    tbtEnabled: bit(f4, 8),
    psrEnabled: bit(f4, 9),
    ipsEnabled: bit(f4, 10),
    dfpsEnabled: bit(f4, 11),
    dmrrsEnabled: bit(f4, 12),
    adtEnabled: bit(f4, 13),
    hpdWake: bit(f4, 14),
    pcFeatureValid: bit(f4, 15),
  };
}

/** Block 40 — struct bdb_lvds_options (the LFP options; only the leading fields). */
export interface LfpOptions {
  panelType: number;
  /** Second panel's type; the byte exists from BDB 212 on, undefined before. */
  panelType2?: number;
  pfitMode: number;
  pfitTextModeEnhanced: boolean;
  pfitGfxModeEnhanced: boolean;
  pfitRatioAuto: boolean;
  pixelDither: boolean;
  lvdsEdid: boolean;
}

const BDB_VERSION_PANEL_TYPE2 = 212; // intel_vbt_defs.h: panel_type2 /* 212 */

export function decodeLfpOptions(p: Uint8Array, bdbVersion: number): LfpOptions {
  const caps = byteAt(p, 2);
  return {
    panelType: byteAt(p, 0),
    panelType2: bdbVersion >= BDB_VERSION_PANEL_TYPE2 ? byteAt(p, 1) : undefined,
    pfitMode: caps & 3,
    pfitTextModeEnhanced: bit(caps, 2),
    pfitGfxModeEnhanced: bit(caps, 3),
    pfitRatioAuto: bit(caps, 4),
    pixelDither: bit(caps, 5),
    lvdsEdid: bit(caps, 6),
  };
}
