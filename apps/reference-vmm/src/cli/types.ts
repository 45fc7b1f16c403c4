/**
 * `vfiokit types`: the parents the plugins offer and their mdev types, laid out as
 * /sys/class/mdev_bus/<parent>/mdev_supported_types/<type>/, with --json giving the same facts
 * in mdevctl's `types --dumpjson` shape (plus each type's attributes and plugin). Both read one
 * catalogue (parents.ts), so they always agree, also where two plugins name one parent.
 */
import { parseCommand, UsageError } from './args.js';
import { USAGE } from './help.js';
import type { CliIo } from './io.js';
import { loadCatalogue } from './parents.js';
import { CONFIG_OPTIONS } from './setup.js';

export async function typesCommand(argv: readonly string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseCommand(
    'types',
    argv,
    { help: { type: 'boolean', short: 'h' }, plugin: CONFIG_OPTIONS.plugin, json: { type: 'boolean' } },
    1,
  );
  if (values.help) {
    io.stdout.write(USAGE.types);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError('vfiokit types takes one configuration.', 'types');
  const catalogue = await loadCatalogue(values, positionals, io, 'types');
  if (values.json) {
    // mdevctl types --dumpjson: [ { "<parent>": [ { "<type>": { available_instances, device_api, name, description? } } ] } ]
    const json = catalogue.length
      ? [
          Object.fromEntries(
            catalogue.map((c) => [
              c.name,
              c.types.map(({ plugin, type: t }) => ({
                [t.id]: {
                  available_instances: t.availableInstances,
                  device_api: t.deviceApi,
                  name: t.name,
                  ...(t.description !== undefined ? { description: t.description } : {}),
                  ...(t.attributes ? { attributes: t.attributes } : {}),
                  plugin,
                },
              })),
            ]),
          ),
        ]
      : [];
    io.stdout.write(`${JSON.stringify(json, null, 2)}\n`);
    return 0;
  }
  const out: string[] = [];
  for (const c of catalogue) {
    const shared = c.plugins.length > 1;
    out.push(`/sys/class/mdev_bus/${c.name}/   (${shared ? 'plugins' : 'plugin'} ${c.plugins.join(', ')})`);
    for (const { plugin, type: t } of c.types) {
      out.push(`  mdev_supported_types/${t.id}/${shared ? `   (plugin ${plugin})` : ''}`);
      const rows: [string, string][] = [
        ['name', t.name],
        ...(t.description !== undefined ? ([['description', t.description]] as [string, string][]) : []),
        ['device_api', t.deviceApi],
        ['available_instances', String(t.availableInstances)],
        ...Object.entries(t.attributes ?? {}),
      ];
      for (const [k, v] of rows) out.push(`    ${k.padEnd(20)} ${v.replace(/\n/g, ' ').trim()}`);
    }
  }
  if (catalogue.length === 0) out.push('no parent devices: the plugins probed none.');
  io.stdout.write(`${out.join('\n')}\n`);
  return 0;
}
