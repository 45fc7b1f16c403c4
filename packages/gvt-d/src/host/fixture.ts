/**
 * Fixture host sources: an OpRegion or a bare VBT (a file or bytes) plus a host profile. A bare
 * VBT is wrapped in an OpRegion with buildOpRegion (2.0 in mailbox 4 up to 6 KiB, 2.1 with RVDA
 * beyond); with neither, the synthetic VBT is used, so a source always exists.
 */
import { readFileSync } from 'node:fs';
import { VfioError } from '@vfiokit/core';
import { buildOpRegion } from '../opregion/build.js';
import { OPREGION_SIGNATURE } from '../opregion/layout.js';
import { syntheticVbt } from '../synthetic-vbt.js';
import { VBT_SIGNATURE_PREFIX } from '../vbt/layout.js';
import { identityFromConfig, makeFacts } from './facts.js';
import { configImage, DEFAULT_PROFILE, hostProfile, igdConfigImage, profileBars } from './profiles.js';
import type { HostProfile, IgdHostFacts, IgdHostSource } from './types.js';

export interface FixtureSourceOptions {
  /** An OpRegion dump (or a bare VBT, which is then wrapped): a file path or the bytes. */
  opRegion?: string | Uint8Array;
  /** A bare VBT: a file path or the bytes. */
  vbt?: string | Uint8Array;
  /** The extended VBT of a 2.0 OpRegion whose RVDA is a host physical address. */
  extendedVbt?: string | Uint8Array;
  /** A built-in profile name or a profile. Default skylake-hd530. */
  profile?: string | HostProfile;
}

function startsWith(b: Uint8Array, sig: string): boolean {
  if (b.length < sig.length) return false;
  for (let i = 0; i < sig.length; i++) if (b[i] !== sig.charCodeAt(i)) return false;
  return true;
}

function readInput(what: string, input: string | Uint8Array): Uint8Array {
  if (input instanceof Uint8Array) return input;
  try {
    return new Uint8Array(readFileSync(input));
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    throw new VfioError(
      code === 'EACCES' ? 'EACCES' : 'ENOENT',
      `cannot read the ${what} file ${input}: ${code === 'EACCES' ? 'permission denied' : 'no such file'}.`,
      { hint: `Check the path given as the ${what}.`, cause },
    );
  }
}

/** Turn a file's bytes into an OpRegion: an OpRegion stays as it is, a bare VBT is wrapped. */
export function toOpRegion(bytes: Uint8Array, what: string): Uint8Array {
  if (startsWith(bytes, OPREGION_SIGNATURE)) return bytes;
  if (startsWith(bytes, VBT_SIGNATURE_PREFIX)) return buildOpRegion({ vbt: bytes });
  throw new VfioError(
    'EINVAL',
    `the ${what} starts with neither "${OPREGION_SIGNATURE}" (an OpRegion) nor "${VBT_SIGNATURE_PREFIX}" (a VBT).`,
    { region: what, offset: 0, hint: 'Give an OpRegion dump (i915_opregion) or a VBT (i915_vbt, data.vbt).' },
  );
}

export function fixtureSource(options: FixtureSourceOptions = {}): IgdHostSource {
  if (options.opRegion !== undefined && options.vbt !== undefined) {
    throw new VfioError('EINVAL', 'a fixture source takes an OpRegion or a VBT, not both.', {
      hint: 'Drop one of them.',
    });
  }
  const profile = hostProfile(options.profile ?? DEFAULT_PROFILE);
  const name = (x: string | Uint8Array | undefined) =>
    x === undefined ? undefined : typeof x === 'string' ? x : `${x.length} bytes`;
  const from =
    options.opRegion !== undefined
      ? `OpRegion ${name(options.opRegion)}`
      : options.vbt !== undefined
        ? `VBT ${name(options.vbt)}`
        : 'the synthetic VBT';
  return {
    describe: () => `fixture: profile ${profile.name} with ${from}`,
    load(): IgdHostFacts {
      let opRegion: Uint8Array;
      if (options.opRegion !== undefined)
        opRegion = toOpRegion(readInput('OpRegion', options.opRegion), 'OpRegion');
      else if (options.vbt !== undefined) opRegion = toOpRegion(readInput('VBT', options.vbt), 'VBT');
      else opRegion = buildOpRegion({ vbt: syntheticVbt() });
      return makeFacts({
        source: `fixture ${profile.name}`,
        igd: identityFromConfig(igdConfigImage(profile)),
        hostBridge: configImage(profile.hostBridge, profile.hostBridge.configSize),
        lpcBridge: configImage(profile.lpcBridge, profile.lpcBridge.configSize),
        opRegion,
        ...(options.extendedVbt !== undefined
          ? { extendedVbt: readInput('extended VBT', options.extendedVbt) }
          : {}),
        bars: profileBars(profile),
      });
    },
  };
}

/** The default source: the default profile with an OpRegion built around the synthetic VBT. */
export function syntheticSource(profile: string | HostProfile = DEFAULT_PROFILE): IgdHostSource {
  const inner = fixtureSource({ profile });
  return {
    describe: () => `synthetic: profile ${hostProfile(profile).name} with the synthetic VBT`,
    load: () => ({ ...inner.load(), source: `synthetic ${hostProfile(profile).name}` }),
  };
}
