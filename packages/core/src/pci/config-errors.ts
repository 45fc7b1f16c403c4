/** Where a configuration-space error happened, and the EINVAL most of them are: one shape for the setup and the live side. */

import { VfioError } from '../errors.js';

export interface ConfigPlace {
  device?: string;
  region: string;
  offset?: number;
}

/** The config region of device `name` (when named), at `offset` (when known). */
export function configPlace(name: string | undefined, offset?: number): ConfigPlace {
  const p: ConfigPlace = { region: 'config' };
  if (name !== undefined) p.device = name;
  if (offset !== undefined) p.offset = offset;
  return p;
}

export function configInvalid(
  name: string | undefined,
  problem: string,
  hint: string,
  offset?: number,
): VfioError {
  return new VfioError('EINVAL', problem, { ...configPlace(name, offset), hint });
}
