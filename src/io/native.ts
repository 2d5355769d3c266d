// Loads the packet-I/O addon (build/Release/tsvs_io.node via node-gyp-build from the repo root) once.
//
// Each port family declares the narrow shape of the addon functions it uses and reads them through
// `native<T>()`; this file types the shared ones (poll) and the AF_PACKET class. A missing build is an
// IoError ESETUP telling how to build it, so importing a port module never crashes without the addon.
import { createRequire } from 'node:module';
import { IoError } from './errors.ts';
import { ROOT } from '../root.ts';

/** The AF_PACKET socket class exported by native/src/afpacket.cc. */
export interface NativeAfPacket {
  readonly fd: number;
  readonly ifindex: number;
  readonly mtu: number;
  readonly mac: Uint8Array;
  readonly frameSize: number;
  readonly ringFrames: number;
  readonly maxFrame: number;
  readonly kernelDrop: boolean;
  readonly kernelDropErrno: number;
  rxBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max: number): number;
  txBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number;
  wait(timeoutMs: number): boolean;
  /** PACKET_ADD_MEMBERSHIP (join) / PACKET_DROP_MEMBERSHIP of a PACKET_MR_MULTICAST address; 0 or an errno. */
  multicast(mac: Uint8Array, join: boolean): number;
  stats(): {
    rxFrames: number;
    rxBytes: number;
    txFrames: number;
    txBytes: number;
    rxDropped: number;
    rxTruncated: number;
    rxCopied: number;
    txErrors: number;
    kernelPackets: number;
    txGsoViaQdisc: number;
  };
  close(): void;
}

/** Options of the native AF_PACKET constructor (see afpacket.cc). */
export interface NativeAfPacketOptions {
  ringFrames?: number;
  frameSize?: number;
  promisc?: boolean;
  qdiscBypass?: boolean;
  sndbuf?: number;
  fanout?: number;
  maxBurst?: number;
  txRing?: boolean;
  kernelDrop?: boolean;
}

/** Functions every build of the addon has (native/src/common.cc, afpacket.cc). */
export interface CoreNative {
  /** True when `fd` becomes readable within `timeoutMs` (0 = check only). */
  pollFd(fd: number, timeoutMs: number): boolean;
  /** Waits on up to 32 fds; bit i of the result is set when `fds[i]` is readable. */
  pollFds(fds: Int32Array, timeoutMs: number): number;
  AfPacket: new (ifname: string, opts?: NativeAfPacketOptions) => NativeAfPacket;
}

let cached: unknown;

/** The loaded addon, typed as `T` (defaults to the shared functions and the AF_PACKET class). */
export function native<T extends object = CoreNative>(): T & CoreNative {
  if (cached === undefined) {
    const require = createRequire(import.meta.url);
    try {
      const load = require('node-gyp-build') as (dir: string) => unknown;
      cached = load(ROOT);
    } catch (e) {
      throw new IoError('ESETUP', `packet-I/O addon not built (run \`npx node-gyp-build\` in ${ROOT}): ${(e as Error).message}`);
    }
  }
  return cached as T & CoreNative;
}
