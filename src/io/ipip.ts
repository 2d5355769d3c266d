// Real-server-side IPIP decapsulator: raw protocol-4 socket in, outer header stripped, inner packet into a TUN.
//
// This kernel has no ipip module, so a TUN-mode real server cannot terminate the director's tunnel
// itself (DESIGN.md §5). A raw socket for protocol 4 receives the tunnelled packets (and keeps the
// kernel from answering them with protocol-unreachable); writing the inner packet to a TUN device
// delivers it to local sockets as if it had arrived on that interface. Requirements: the VIP on lo (or
// any local interface) and rp_filter 0 on the TUN and on `all`, since the inner source (the client) is
// not routed via the TUN. The loop runs on a worker thread so the caller's event loop stays free.
import { readFileSync, writeFileSync } from 'node:fs';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { IoError, nativeCall } from './errors.ts';
import { native } from './native.ts';
import { tapNative } from './tap.ts';
import { moduleWorker } from '../root.ts';
import { GRO, groBurst } from './ipip-gro.ts';

/** The addon functions of native/src/ipip.cc. */
export interface IpipNative {
  ipipRawOpen(rcvbuf?: number): number;
  ipipRecvBurst(fd: number, buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max: number, slot: number, stats: Float64Array): number;
  /** With `vnetHdr`, every write starts with a 10-byte virtio-net header (GSO frames allowed). */
  tunOpen(name: string, vnetHdr?: boolean): number;
  tunWriteBurst(fd: number, buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, slot: number, stats: Float64Array): number;
  ipipSend(fd: number, buf: Uint8Array, offset: number, length: number, dst: number): boolean;
  ipipClose(fd: number): void;
  IPIP_STAT_COUNT: number;
}

/** The IPIP-family addon, typed. */
export function ipipNative(): IpipNative {
  return native<IpipNative>();
}

/** Decapsulation counters (indices into the decap counter array). */
export const DECAP = {
  /** Inner packets handed to the TUN. */
  OK: 0,
  /** Outer header unusable: not IPv4, bad IHL, bad total length, protocol not 4, a fragment. */
  BAD_OUTER: 1,
  /** Inner packet unusable: too short, not IPv4, bad IHL, bad total length, bad header checksum. */
  BAD_INNER: 2,
  /** Inner destination is not one of the configured VIPs. */
  NOT_VIP: 3,
  COUNT: 4,
} as const;

function be16(b: Uint8Array, o: number): number {
  return (b[o]! << 8) | b[o + 1]!;
}

function be32(b: Uint8Array, o: number): number {
  return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
}

/** One's-complement sum of an IPv4 header is 0xffff when its checksum is right. */
function ipv4HeaderOk(b: Uint8Array, o: number, len: number): boolean {
  let sum = 0;
  for (let i = 0; i < len; i += 2) sum += (b[o + i]! << 8) | b[o + i + 1]!;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum === 0xffff;
}

/**
 * Strips the outer IPv4 header of `n` received packets in place: a good one gets `offsets[i]` moved to
 * its inner packet and `lengths[i]` set to the inner total length; a bad one gets `lengths[i] = 0` (the
 * TUN writer skips those) and bumps a DECAP counter. `vips` (host-order addresses, first `vipCount`
 * used) restricts inner destinations; with `vipCount` 0 any destination passes. Never throws or
 * allocates. Returns how many packets are good.
 */
export function decapBurst(
  buf: Uint8Array,
  offsets: Uint32Array,
  lengths: Uint32Array,
  n: number,
  vips: Uint32Array,
  vipCount: number,
  counters: Float64Array,
): number {
  let good = 0;
  for (let i = 0; i < n; i++) {
    const o = offsets[i]!;
    const len = lengths[i]!;
    if (len === 0) continue; // truncated by the socket, already counted
    lengths[i] = 0;
    if (len < 20 || o + len > buf.length) {
      counters[DECAP.BAD_OUTER]! += 1;
      continue;
    }
    const vihl = buf[o]!;
    const hl = (vihl & 0x0f) << 2;
    const total = be16(buf, o + 2);
    if (vihl >> 4 !== 4 || hl < 20 || total < hl || total > len || buf[o + 9] !== 4 || (be16(buf, o + 6) & 0x3fff) !== 0) {
      counters[DECAP.BAD_OUTER]! += 1;
      continue;
    }
    const io = o + hl;
    const avail = total - hl;
    if (avail < 20) {
      counters[DECAP.BAD_INNER]! += 1;
      continue;
    }
    const ivihl = buf[io]!;
    const ihl = (ivihl & 0x0f) << 2;
    const itotal = be16(buf, io + 2);
    if (ivihl >> 4 !== 4 || ihl < 20 || ihl > avail || itotal < ihl || itotal > avail || !ipv4HeaderOk(buf, io, ihl)) {
      counters[DECAP.BAD_INNER]! += 1;
      continue;
    }
    if (vipCount > 0) {
      const dst = be32(buf, io + 16);
      let hit = false;
      for (let v = 0; v < vipCount; v++) {
        if (vips[v] === dst) {
          hit = true;
          break;
        }
      }
      if (!hit) {
        counters[DECAP.NOT_VIP]! += 1;
        continue;
      }
    }
    offsets[i] = io;
    lengths[i] = itotal;
    counters[DECAP.OK]! += 1;
    good++;
  }
  return good;
}

/** Dotted quad → host-order number; throws IoError EINVAL when malformed (slow path). */
export function parseIPv4(s: string): number {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(s);
  if (!m) throw new IoError('EINVAL', `bad IPv4 address '${s}'`);
  const p = m.slice(1).map(Number);
  if (p.some((x) => x > 255)) throw new IoError('EINVAL', `bad IPv4 address '${s}'`);
  return ((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0;
}

/** Counters of a running decapsulator (a snapshot). */
export interface IpipDecapStats {
  /** IPIP packets read from the raw socket. */
  rxPackets: number;
  rxBytes: number;
  /** Packets longer than a receive slot (dropped). */
  rxTruncated: number;
  /** Inner packets written to the TUN, and writes that failed. */
  txPackets: number;
  txBytes: number;
  txErrors: number;
  decapsulated: number;
  badOuter: number;
  badInner: number;
  notVip: number;
  /** TCP segments merged into an earlier one of their burst, and the GSO frames that made (src/io/ipip-gro.ts). */
  groMerged: number;
  groFrames: number;
}

/** Options of the decapsulator. */
export interface IpipDecapOptions {
  /** Set rp_filter to 0 on the TUN and on `all` (default true): the inner source is not routed via the TUN. */
  relaxRpFilter?: boolean;
  /** Raw socket receive buffer in bytes (default 4 MiB). */
  rcvbuf?: number;
  /** Packets per receive burst (default 64, at most 256). */
  burst?: number;
}

// Layout of the SharedArrayBuffer the worker bumps and the main thread reads: raw-socket stats,
// TUN-write stats (both the addon's 6-slot layout), decap counters, then an Int32 control word.
const NATIVE_SLOTS = 6;
const RAW_AT = 0;
const TUN_AT = NATIVE_SLOTS * 8;
const DECAP_AT = 2 * NATIVE_SLOTS * 8;
const GRO_AT = DECAP_AT + DECAP.COUNT * 8;
const CTL_AT = GRO_AT + GRO.COUNT * 8;
const SAB_BYTES = CTL_AT + 8;
const SLOT = 65536;

interface WorkerInit {
  tsvsIpipDecap: true;
  rawFd: number;
  tunFd: number;
  vips: number[];
  burst: number;
  sab: SharedArrayBuffer;
}

/**
 * The burst loop, run on the worker: sleep in poll when idle, else receive a burst, strip, write.
 * Returns when the control word says stop.
 */
function runLoop(init: WorkerInit): void {
  const n = ipipNative();
  const pollFd = native().pollFd;
  const raw = new Float64Array(init.sab, RAW_AT, NATIVE_SLOTS);
  const tun = new Float64Array(init.sab, TUN_AT, NATIVE_SLOTS);
  const decap = new Float64Array(init.sab, DECAP_AT, DECAP.COUNT);
  const gro = new Float64Array(init.sab, GRO_AT, GRO.COUNT);
  const ctl = new Int32Array(init.sab, CTL_AT, 1);
  const burst = init.burst;
  const buf = new Uint8Array(burst * SLOT);
  const offsets = new Uint32Array(burst);
  const lengths = new Uint32Array(burst);
  const vips = Uint32Array.from(init.vips);
  while (Atomics.load(ctl, 0) === 0) {
    if (!pollFd(init.rawFd, 50)) continue;
    // Drain a few bursts per wake-up, then look at the control word again.
    for (let round = 0; round < 16; round++) {
      for (let i = 0; i < burst; i++) offsets[i] = i * SLOT;
      const got = n.ipipRecvBurst(init.rawFd, buf, offsets, lengths, burst, SLOT, raw);
      if (got === 0) break;
      if (decapBurst(buf, offsets, lengths, got, vips, vips.length, decap) > 0) {
        groBurst(buf, offsets, lengths, got, gro);
        n.tunWriteBurst(init.tunFd, buf, offsets, lengths, got, 0, tun);
      }
      if (got < burst) break;
    }
  }
}

if (!isMainThread && (workerData as WorkerInit | undefined)?.tsvsIpipDecap === true) {
  parentPort?.postMessage('ready');
  runLoop(workerData as WorkerInit);
}

/**
 * Starts this module on a worker. Run from source (tsx), a worker does not inherit the .ts loader
 * hooks, so a tiny bootstrap registers tsx in the worker before importing this file.
 */
function startWorker(init: WorkerInit): Worker {
  return moduleWorker(import.meta.url, './ipip', { workerData: init });
}

function setSysctl(path: string, value: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() !== value) writeFileSync(path, value);
  } catch (e) {
    throw new IoError('ESETUP', `cannot set ${path} to ${value}: ${(e as Error).message}`);
  }
}

/**
 * The decapsulator of a TUN-mode real server. `start` opens the TUN (created if absent, removed again on
 * stop), brings it up, relaxes rp_filter, opens the raw socket and starts the loop on a worker thread;
 * any set-up failure throws an IoError and leaves nothing open. Inner packets whose destination is not
 * one of `vips` are dropped and counted, so the tunnel cannot be used to inject traffic for other
 * addresses.
 */
export class IpipDecap {
  private rawFd = -1;
  private tunFd = -1;
  private worker: Worker | undefined;
  private sab: SharedArrayBuffer | undefined;
  private tunName = '';
  private failure: Error | undefined;
  private exited: Promise<void> = Promise.resolve();

  /** Starts decapsulating into TUN `tunName` for `vip` (one address or several). */
  async start(tunName: string, vip: string | string[], opts: IpipDecapOptions = {}): Promise<void> {
    if (this.worker) throw new IoError('EINVAL', 'decapsulator already started');
    const vips = (Array.isArray(vip) ? vip : [vip]).map(parseIPv4);
    if (vips.length === 0) throw new IoError('EINVAL', 'at least one VIP is needed');
    const burst = Math.min(256, Math.max(1, opts.burst ?? 64));
    const n = ipipNative();
    try {
      this.tunFd = nativeCall(() => n.tunOpen(tunName, true));
      this.tunName = tunName;
      nativeCall(() => tapNative().tapIfSetUp(tunName, true));
      if (opts.relaxRpFilter !== false) {
        setSysctl(`/proc/sys/net/ipv4/conf/${tunName}/rp_filter`, '0');
        setSysctl('/proc/sys/net/ipv4/conf/all/rp_filter', '0');
      }
      this.rawFd = nativeCall(() => n.ipipRawOpen(opts.rcvbuf ?? 4 << 20));
      this.sab = new SharedArrayBuffer(SAB_BYTES);
      const init: WorkerInit = { tsvsIpipDecap: true, rawFd: this.rawFd, tunFd: this.tunFd, vips, burst, sab: this.sab };
      const w = startWorker(init);
      this.worker = w;
      this.exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
      // The loop reports 'ready' once its module loaded; a load failure surfaces here as a rejection.
      await new Promise<void>((resolve, reject) => {
        w.once('message', () => resolve());
        w.once('error', reject);
        w.once('exit', (code) => reject(new IoError('ESETUP', `decapsulator worker exited (${code}) before starting`)));
      });
      w.on('error', (e) => {
        this.failure = e;
      });
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  /** Stops the loop (within ~50 ms), closes the socket and the TUN. Safe to call twice. */
  async stop(): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    if (w && this.sab) {
      Atomics.store(new Int32Array(this.sab, CTL_AT, 1), 0, 1);
      const kill = setTimeout(() => void w.terminate(), 2000);
      await this.exited;
      clearTimeout(kill);
    }
    const n = this.rawFd >= 0 || this.tunFd >= 0 ? ipipNative() : undefined;
    if (this.rawFd >= 0) n!.ipipClose(this.rawFd);
    if (this.tunFd >= 0) n!.ipipClose(this.tunFd);
    this.rawFd = -1;
    this.tunFd = -1;
  }

  /** Name of the TUN device in use ('' before start). */
  get tun(): string {
    return this.tunName;
  }

  /** The error that stopped the worker, if one did (the counters then stop moving). */
  get error(): Error | undefined {
    return this.failure;
  }

  /** A snapshot of the counters (zeros before start). */
  stats(): IpipDecapStats {
    const sab = this.sab ?? new SharedArrayBuffer(SAB_BYTES);
    const raw = new Float64Array(sab, RAW_AT, NATIVE_SLOTS);
    const tun = new Float64Array(sab, TUN_AT, NATIVE_SLOTS);
    const d = new Float64Array(sab, DECAP_AT, DECAP.COUNT);
    const g = new Float64Array(sab, GRO_AT, GRO.COUNT);
    return {
      rxPackets: raw[0]!,
      rxBytes: raw[1]!,
      rxTruncated: raw[5]!,
      txPackets: tun[2]!,
      txBytes: tun[3]!,
      txErrors: tun[4]!,
      decapsulated: d[DECAP.OK]!,
      badOuter: d[DECAP.BAD_OUTER]!,
      badInner: d[DECAP.BAD_INNER]!,
      notVip: d[DECAP.NOT_VIP]!,
      groMerged: g[GRO.MERGED]!,
      groFrames: g[GRO.FRAMES]!,
    };
  }
}
