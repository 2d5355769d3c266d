// Typed errors of the packet-I/O layer: one code per way a port can fail to open or be used.
import { constants } from 'node:os';

/** Why a port could not be opened or used. */
export type IoErrorCode =
  /** Not root, or missing CAP_NET_RAW / CAP_NET_ADMIN. */
  | 'EPERM'
  /** No such interface (in this network namespace). */
  | 'ENODEV'
  /** The interface exists but is administratively down. */
  | 'ENETDOWN'
  /** A socket, ring, mmap or ioctl step failed; `errno` says which errno. */
  | 'ESETUP'
  /** A bad argument (name too long, bad option, unknown or unavailable port kind). */
  | 'EINVAL';

const CODES: ReadonlySet<string> = new Set(['EPERM', 'ENODEV', 'ENETDOWN', 'ESETUP', 'EINVAL']);

/** An I/O-layer error with a stable code; `errno` is the OS errno behind it (0 when none). */
export class IoError extends Error {
  override readonly name = 'IoError';
  constructor(
    readonly code: IoErrorCode,
    message: string,
    readonly errno = 0,
  ) {
    super(message);
  }
}

/** Maps an error thrown by the native addon (an Error with `code` and `errno`) to an IoError. */
export function toIoError(e: unknown): IoError {
  if (e instanceof IoError) return e;
  const err = e as { code?: unknown; errno?: unknown; message?: unknown };
  const code = typeof err?.code === 'string' && CODES.has(err.code) ? (err.code as IoErrorCode) : 'ESETUP';
  const message = typeof err?.message === 'string' ? err.message : String(e);
  return new IoError(code, message, typeof err?.errno === 'number' ? err.errno : 0);
}

/** Runs a slow-path native call and rethrows whatever it throws as an IoError. */
export function nativeCall<T>(fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    throw toIoError(e);
  }
}

/** ENOENT (2) for an errno number, for messages. */
export function errnoName(n: number): string {
  const name = Object.entries(constants.errno).find(([, v]) => v === n)?.[0];
  return name ? `${name} (${n})` : `errno ${n}`;
}
