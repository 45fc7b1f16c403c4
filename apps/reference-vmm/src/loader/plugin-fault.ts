/**
 * Failures of a plugin's own code outside a device access (its probe, creating or removing an
 * instance, a guest program) and failures nobody expected, each worded for what happened. Core's
 * toVfioError is for device accesses: it says the access was refused and the device state is
 * unchanged, which is not true of a probe or of a file the CLI could not write.
 */
import { type ErrnoName, VfioError } from '@vfiokit/core';
import { ERRNO } from '@vfiokit/core/abi';

function thrown(err: unknown): string {
  if (err instanceof Error)
    return `${err.name === 'Error' ? 'an Error' : `a ${err.name}`}: ${err.message.split('\n')[0].replace(/\.$/, '')}`;
  return `${JSON.stringify(err) ?? String(err)}`;
}

/**
 * Plugin code failed; `failed` says what failed (`plugin "x" failed to probe its parent devices`).
 * A VfioError the plugin threw keeps its code, place and hint; anything else is EIO and a bug in
 * the plugin.
 */
export function pluginFault(err: unknown, failed: string, plugin: string): VfioError {
  if (err instanceof VfioError)
    return new VfioError(err.code, `${failed}: ${err.problem}`, { ...err.place, hint: err.hint, cause: err });
  return new VfioError('EIO', `${failed}: the plugin's code threw ${thrown(err)}.`, {
    hint: `This is a bug in plugin "${plugin}": it should throw a VfioError that says what is wrong.`,
    cause: err,
  });
}

/** A Node system error (EEXIST from a file, say) with its errno, or an error nobody expected. */
export function unexpectedFault(err: unknown): VfioError {
  if (err instanceof VfioError) return err;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (typeof code === 'string' && /^E[A-Z0-9]+$/.test(code)) {
    const name: ErrnoName = code in ERRNO ? (code as ErrnoName) : 'EIO';
    return new VfioError(name, `${(err as Error).message}.`, { cause: err });
  }
  return new VfioError('EIO', `vfiokit failed unexpectedly: ${thrown(err)}.`, {
    hint: 'This is a bug in vfiokit (or a plugin it ran); report it with the command line that caused it.',
    cause: err,
  });
}
