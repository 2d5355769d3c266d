// The neighbour cache: IPv4 → MAC per port, resolved by ARP, with a few frames queued while resolving.

export const enum NeighState {
  Incomplete = 1,
  Reachable = 2,
  Stale = 3,
  Failed = 4,
}

/** One neighbour. Slow-path object; looked up per packet through a Map with an integer key. */
export interface Neighbour {
  readonly ip: number;
  port: number;
  readonly mac: Uint8Array;
  state: NeighState;
  /** When the entry was last confirmed (ms). */
  confirmedAt: number;
  /** When the last ARP request went out (ms), and how many went out unanswered. */
  probedAt: number;
  probes: number;
  /** Queued frames' slot numbers in the pending pool, oldest first. */
  pending: number[];
}

export interface NeighOptions {
  /** How long a confirmed entry is used without re-probing (ms). */
  reachableMs?: number;
  /** Interval between ARP requests for an unresolved neighbour (ms). */
  retransMs?: number;
  /** ARP requests before an entry is marked failed. */
  maxProbes?: number;
  /** How long a failed entry drops traffic before resolution is tried again (ms). */
  failedHoldMs?: number;
  /** Frames queued per unresolved neighbour (more are dropped and counted). */
  queuePerNeighbour?: number;
  /** Frames the whole pending pool holds, and the largest frame (bytes, vnet header included) it keeps. */
  poolFrames?: number;
  poolFrameSize?: number;
}

/** What the cache needs from the stack: send an ARP request, transmit a queued frame once resolved. */
export interface NeighIo {
  sendArpRequest(port: number, targetIp: number): void;
  /** Called for each queued frame when its neighbour resolves; `mac` is the resolved address. */
  transmitQueued(port: number, buf: Uint8Array, off: number, len: number, mac: Uint8Array): void;
}

export const NEIGH_DROP = { queueFull: 0, tooBig: 1, failed: 2, expiredInQueue: 3 } as const;

/**
 * ARP-resolved neighbours. `lookup` is the per-packet call: it returns the MAC when usable and
 * otherwise queues the frame (copying it into a preallocated pool) and starts or continues resolution.
 */
export class NeighbourCache {
  private readonly map = new Map<number, Neighbour>();
  private readonly reachableMs: number;
  private readonly retransMs: number;
  private readonly maxProbes: number;
  private readonly failedHoldMs: number;
  private readonly perNeigh: number;
  private readonly pool: Uint8Array;
  private readonly poolLen: Uint32Array;
  private readonly poolFree: number[] = [];
  readonly poolFrameSize: number;
  /** Drop counters indexed by NEIGH_DROP. */
  readonly drops = new Float64Array(4);

  constructor(
    private readonly io: NeighIo,
    opts: NeighOptions = {},
  ) {
    this.reachableMs = opts.reachableMs ?? 30_000;
    this.retransMs = opts.retransMs ?? 1_000;
    this.maxProbes = opts.maxProbes ?? 3;
    this.failedHoldMs = opts.failedHoldMs ?? 5_000;
    this.perNeigh = opts.queuePerNeighbour ?? 3;
    const frames = opts.poolFrames ?? 64;
    this.poolFrameSize = opts.poolFrameSize ?? 65_600;
    this.pool = new Uint8Array(frames * this.poolFrameSize);
    this.poolLen = new Uint32Array(frames);
    for (let i = frames - 1; i >= 0; i--) this.poolFree.push(i);
  }

  /** The entry for `ip`, if any (listing, tests). */
  get(ip: number): Neighbour | undefined {
    return this.map.get(ip >>> 0);
  }

  /** Adds or refreshes a permanent-until-expired mapping learned from ARP (request or reply). */
  learn(ip: number, port: number, mac: Uint8Array, macOff: number, now: number, create: boolean): void {
    const key = ip >>> 0;
    let n = this.map.get(key);
    if (!n) {
      if (!create) return;
      n = { ip: key, port, mac: new Uint8Array(6), state: NeighState.Reachable, confirmedAt: now, probedAt: 0, probes: 0, pending: [] };
      this.map.set(key, n);
    }
    for (let i = 0; i < 6; i++) n.mac[i] = mac[macOff + i]!;
    n.port = port;
    n.state = NeighState.Reachable;
    n.confirmedAt = now;
    n.probes = 0;
    if (n.pending.length) this.flush(n);
  }

  /**
   * Per packet: the MAC to use for next hop `ip` on `port`, or null when the frame was queued or
   * dropped while the neighbour resolves. A stale entry keeps being used while it is re-probed.
   */
  lookup(ip: number, port: number, buf: Uint8Array, off: number, len: number, now: number): Uint8Array | null {
    const u = this.usable(ip, now);
    if (u !== undefined) return u.mac;
    const key = ip >>> 0;
    let n = this.map.get(key);
    if (n !== undefined) {
      if (n.state === NeighState.Failed) {
        if (now - n.probedAt < this.failedHoldMs) {
          this.drops[NEIGH_DROP.failed]!++;
          return null;
        }
        n.state = NeighState.Incomplete;
        n.probes = 0;
        n.probedAt = 0;
      }
    } else {
      n = { ip: key, port, mac: new Uint8Array(6), state: NeighState.Incomplete, confirmedAt: 0, probedAt: 0, probes: 0, pending: [] };
      this.map.set(key, n);
    }
    n.port = port;
    this.enqueue(n, buf, off, len);
    if (n.probes === 0 || now - n.probedAt >= this.retransMs) this.probe(n, now);
    return null;
  }

  /**
   * The entry whose MAC a sender may use for `ip` now, aged and re-probed as a per-packet lookup does:
   * Reachable, or Stale while it is re-probed (once per retransmit interval); undefined otherwise.
   * Queues nothing. The kernel fast path calls it for the next hops its entries use, so a neighbour
   * only the fast path sends to is still re-confirmed (a MAC that moved is learned, one that stopped
   * answering goes).
   */
  usable(ip: number, now: number): Neighbour | undefined {
    const n = this.map.get(ip >>> 0);
    if (n === undefined) return undefined;
    if (n.state === NeighState.Reachable) {
      if (now - n.confirmedAt < this.reachableMs) return n;
      n.state = NeighState.Stale;
    }
    if (n.state === NeighState.Stale) {
      if (now - n.probedAt >= this.retransMs) this.probe(n, now);
      return n;
    }
    return undefined;
  }

  /** Timer work: re-probe unresolved entries, fail them after maxProbes, forget long-idle ones. */
  tick(now: number): void {
    for (const n of this.map.values()) {
      if (n.state === NeighState.Incomplete && now - n.probedAt >= this.retransMs) {
        if (n.probes >= this.maxProbes) {
          n.state = NeighState.Failed;
          n.probedAt = now;
          this.drops[NEIGH_DROP.expiredInQueue]! += n.pending.length;
          for (const s of n.pending) this.poolFree.push(s);
          n.pending.length = 0;
        } else this.probe(n, now);
      } else if (n.state === NeighState.Stale && now - n.confirmedAt > 10 * this.reachableMs) {
        this.map.delete(n.ip);
      } else if (n.state === NeighState.Failed && now - n.probedAt > 10 * this.failedHoldMs) {
        this.map.delete(n.ip);
      }
    }
  }

  private probe(n: Neighbour, now: number): void {
    n.probedAt = now;
    n.probes++;
    this.io.sendArpRequest(n.port, n.ip);
  }

  private enqueue(n: Neighbour, buf: Uint8Array, off: number, len: number): void {
    if (len > this.poolFrameSize) {
      this.drops[NEIGH_DROP.tooBig]!++;
      return;
    }
    if (n.pending.length >= this.perNeigh || this.poolFree.length === 0) {
      this.drops[NEIGH_DROP.queueFull]!++;
      return;
    }
    const slot = this.poolFree.pop()!;
    this.pool.set(buf.subarray(off, off + len), slot * this.poolFrameSize);
    this.poolLen[slot] = len;
    n.pending.push(slot);
  }

  private flush(n: Neighbour): void {
    for (const slot of n.pending) {
      this.io.transmitQueued(n.port, this.pool, slot * this.poolFrameSize, this.poolLen[slot]!, n.mac);
      this.poolFree.push(slot);
    }
    n.pending.length = 0;
  }
}
