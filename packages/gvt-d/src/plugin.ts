/**
 * The @vfiokit/gvt-d plugin. A passthrough IGD is not mediated, but our contract is mdev-shaped
 * (parent -> types -> instances), so the assigned IGD shows up as one parent named by its PCI
 * address with one type, `gvt-d-igd`, whose available_instances is 1 while the IGD is free and 0
 * while it is assigned (MdevParent with capacity 1). Creating the instance is binding the IGD
 * to the VM; removing it gives the IGD back.
 *
 * Options (host.options): `{}` or `{ source: 'synthetic', profile? }` (default: no files needed),
 * `{ source: 'fixture', opRegion?: path, vbt?: path, profile?: name }`,
 * `{ source: 'linux', bdf?: '0000:00:02.0', root?: '/' }`.
 */
import { definePlugin, MdevParent, type PluginHost, VfioError } from '@vfiokit/core';
import { IgdPassthroughDevice, igdRegions } from './device/igd-device.js';
import { opRegionDriver } from './guest/opregion-driver.js';
import { fixtureSource, syntheticSource } from './host/fixture.js';
import { linuxSource } from './host/linux.js';
import type { IgdHostFacts, IgdHostSource } from './host/types.js';

export const IGD_TYPE_NAME = 'igd';
export const IGD_DRIVER = 'gvt-d';

function stringOption(options: Readonly<Record<string, unknown>>, key: string): string | undefined {
  const v = options[key];
  if (v === undefined) return undefined;
  if (typeof v !== 'string' || v.length === 0) {
    throw new VfioError(
      'EINVAL',
      `plugin option "${key}" must be a non-empty string, not ${JSON.stringify(v)}.`,
      {
        hint: "Options are source ('synthetic', 'fixture', 'linux'), profile, opRegion, vbt, bdf and root, all strings.",
      },
    );
  }
  return v;
}

/** The host source that plugin options choose. */
export function sourceFromOptions(options: Readonly<Record<string, unknown>>): IgdHostSource {
  const source = stringOption(options, 'source') ?? 'synthetic';
  const profile = stringOption(options, 'profile');
  switch (source) {
    case 'synthetic':
      return syntheticSource(profile);
    case 'fixture': {
      const opRegion = stringOption(options, 'opRegion');
      const vbt = stringOption(options, 'vbt');
      return fixtureSource({
        ...(opRegion ? { opRegion } : {}),
        ...(vbt ? { vbt } : {}),
        ...(profile ? { profile } : {}),
      });
    }
    case 'linux': {
      const bdf = stringOption(options, 'bdf');
      const root = stringOption(options, 'root');
      return linuxSource({ ...(bdf ? { bdf } : {}), ...(root ? { root } : {}) });
    }
    default:
      throw new VfioError('EINVAL', `plugin option source "${source}" is not a host source.`, {
        hint: "Use 'synthetic', 'fixture' or 'linux'.",
      });
  }
}

/** One parent for the host's IGD, with one type of capacity 1. */
export function createIgdParent(
  facts: IgdHostFacts,
  address = '0000:00:02.0',
  host: Pick<PluginHost, 'allocateMemory'> = {},
): MdevParent<IgdHostFacts> {
  igdRegions(facts); // refuse bad facts now, as vfio-pci would refuse the open
  const id = `${facts.igd.vendorId.toString(16).padStart(4, '0')}:${facts.igd.deviceId.toString(16).padStart(4, '0')}`;
  return new MdevParent<IgdHostFacts>({
    name: address,
    driver: IGD_DRIVER,
    capacity: 1,
    types: [
      {
        name: IGD_TYPE_NAME,
        prettyName: 'Intel IGD (direct assignment)',
        description: `The host's Intel integrated graphics ${id}, passed through whole with its OpRegion and the host and LPC bridge config (${facts.source}).`,
        attributes: {
          device_id: id,
          generation: String(facts.generation),
          stolen_bytes: String(facts.stolenBytes),
        },
        data: facts,
      },
    ],
    create: (type) => new IgdPassthroughDevice(type.data ?? facts, { name: address, host }),
  });
}

export default definePlugin({
  name: '@vfiokit/gvt-d',
  description:
    'Intel IGD direct assignment (GVT-d): the IGD with its OpRegion, host-bridge and LPC-bridge config regions.',
  probe(host: PluginHost) {
    const source = sourceFromOptions(host.options);
    host.log.info(`gvt-d: ${source.describe()}`);
    const facts = source.load();
    const bdf = typeof host.options.bdf === 'string' ? host.options.bdf.toLowerCase() : undefined;
    return [createIgdParent(facts, bdf, host)];
  },
  guestDrivers: [opRegionDriver],
});
