/**
 * Errors with an errno-style code, the place they happened and what to do about them.
 * A VfioError is a value: the dispatcher turns it into a negative errno for the caller, and
 * its message is the sentence a person reads.
 */

// asm-generic/errno-base.h and asm-generic/errno.h (x86-64 values)
export const ERRNO = Object.freeze({
  EPERM: 1,
  ENOENT: 2,
  EIO: 5,
  ENXIO: 6,
  E2BIG: 7,
  EBADF: 9,
  EAGAIN: 11,
  ENOMEM: 12,
  EACCES: 13,
  EFAULT: 14,
  EBUSY: 16,
  EEXIST: 17,
  ENODEV: 19,
  ENOTDIR: 20,
  EISDIR: 21,
  EINVAL: 22,
  ENOSPC: 28,
  ESPIPE: 29,
  ERANGE: 34,
  ENOTTY: 25,
  EMFILE: 24,
  EPIPE: 32,
  ENOSYS: 38,
  ENOMSG: 42,
  EPROTO: 71,
  EOVERFLOW: 75,
  EOPNOTSUPP: 95,
  EADDRINUSE: 98,
  ECONNRESET: 104,
  ECONNREFUSED: 111,
  ETIMEDOUT: 110,
} as const);

export type ErrnoName = keyof typeof ERRNO;

export function errnoName(errno: number): ErrnoName | undefined {
  for (const [name, value] of Object.entries(ERRNO)) if (value === errno) return name as ErrnoName;
  return undefined;
}

/** Where an error happened: the device (UUID or name), the region and the offset inside it. */
export interface ErrorPlace {
  device?: string;
  region?: number | string;
  offset?: number;
  irq?: number;
}

export interface VfioErrorOptions extends ErrorPlace {
  /** What the caller can do about it; appended to the message. */
  hint?: string;
  cause?: unknown;
}

export class VfioError extends Error {
  override readonly name = 'VfioError';
  readonly code: ErrnoName;
  readonly errno: number;
  readonly place: ErrorPlace;
  readonly hint: string | undefined;
  /** The problem alone, without the place and the hint. */
  readonly problem: string;

  constructor(code: ErrnoName, problem: string, options: VfioErrorOptions = {}) {
    const { hint, cause, ...place } = options;
    super(formatMessage(code, problem, place, hint), cause === undefined ? undefined : { cause });
    this.code = code;
    this.errno = ERRNO[code];
    this.place = place;
    this.hint = hint;
    this.problem = problem;
  }

  /** The same error seen from an outer place (the device name added by the dispatcher, say). */
  at(place: ErrorPlace): VfioError {
    const merged = { ...place, ...this.place };
    return new VfioError(this.code, this.problem, { ...merged, hint: this.hint, cause: this.cause });
  }
}

function describePlace(place: ErrorPlace): string {
  const parts: string[] = [];
  if (place.device !== undefined) parts.push(`device ${place.device}`);
  if (place.region !== undefined) parts.push(`region ${place.region}`);
  if (place.irq !== undefined) parts.push(`irq index ${place.irq}`);
  if (place.offset !== undefined) parts.push(`offset 0x${place.offset.toString(16)}`);
  return parts.join(', ');
}

function formatMessage(code: ErrnoName, problem: string, place: ErrorPlace, hint?: string): string {
  const where = describePlace(place);
  return `${code}: ${where ? `${where}: ` : ''}${problem}${hint ? ` ${hint}` : ''}`;
}

/** Any thrown value as a VfioError: foreign errors become EIO and keep their message as cause. */
export function toVfioError(err: unknown, place: ErrorPlace = {}): VfioError {
  if (err instanceof VfioError) return err.at(place);
  const message = err instanceof Error ? err.message : String(err);
  return new VfioError('EIO', `the device handler failed: ${message}.`, {
    ...place,
    hint: 'This is a bug in the plugin; the access was refused and the device state is unchanged by the core.',
    cause: err,
  });
}
