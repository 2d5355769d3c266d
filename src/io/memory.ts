// A pure-TypeScript port for tests without root: linked pairs, bounded queues with counted drops.
import { macString, VNET_HDR_LEN, type Port, type PortStats } from './port.ts';

/** Sizing of a memory port's queues. */
export interface MemoryPortOptions {
  /** Frames each queue holds before it drops (default 256). */
  capacity?: number;
  /** Largest frame, vnet header included (default 2048). */
  maxFrame?: number;
  /** MAC reported by the port (default 02:00:00:00:00:01). */
  mac?: Uint8Array;
  /** MTU reported by the port (default 1500). */
  mtu?: number;
}

/** A fixed ring of fixed-size slots in one ArrayBuffer: push/shift copy bytes, never allocate. */
class FrameQueue {
  private readonly data: Uint8Array;
  private readonly lens: Uint32Array;
  private head = 0;
  size = 0;
  dropped = 0;

  constructor(
    readonly capacity: number,
    readonly slot: number,
  ) {
    this.data = new Uint8Array(capacity * slot);
    this.lens = new Uint32Array(capacity);
  }

  push(src: Uint8Array, off: number, len: number): boolean {
    if (this.size === this.capacity || len > this.slot) {
      this.dropped++;
      return false;
    }
    const i = (this.head + this.size) % this.capacity;
    this.data.set(src.subarray(off, off + len), i * this.slot);
    this.lens[i] = len;
    this.size++;
    return true;
  }

  /** Copies the oldest frame to dst at off and removes it; returns its length (0 if empty or no room). */
  shift(dst: Uint8Array, off: number): number {
    if (this.size === 0) return 0;
    const len = this.lens[this.head];
    if (off + len > dst.length) return 0;
    const start = this.head * this.slot;
    dst.set(this.data.subarray(start, start + len), off);
    this.head = (this.head + 1) % this.capacity;
    this.size--;
    return len;
  }
}

/**
 * A memory port. Frames sent on one end of a `pair()` arrive on the other; an unlinked port keeps
 * what it sends for `drain()`. `inject()` puts a frame on the receive queue as if from the wire.
 */
export class MemoryPort implements Port {
  readonly kind = 'memory' as const;
  readonly fd = -1;
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly maxFrame: number;
  private readonly rxq: FrameQueue;
  private readonly sent: FrameQueue;
  private peer: MemoryPort | null = null;
  private closed = false;
  private readonly s: PortStats = { rxFrames: 0, rxBytes: 0, txFrames: 0, txBytes: 0, rxDropped: 0, txErrors: 0 };

  constructor(
    readonly ifname: string,
    opts: MemoryPortOptions = {},
  ) {
    const capacity = opts.capacity ?? 256;
    this.maxFrame = opts.maxFrame ?? 2048;
    if (!(capacity >= 1) || !(this.maxFrame > VNET_HDR_LEN)) throw new RangeError('memory port: capacity >= 1, maxFrame > 10');
    this.mac = new Uint8Array(opts.mac ?? [2, 0, 0, 0, 0, 1]);
    this.mtu = opts.mtu ?? 1500;
    this.rxq = new FrameQueue(capacity, this.maxFrame);
    this.sent = new FrameQueue(capacity, this.maxFrame);
  }

  /** Two ports wired back to back, like the ends of a veth. */
  static pair(nameA: string, nameB: string, opts: MemoryPortOptions = {}): [MemoryPort, MemoryPort] {
    const a = new MemoryPort(nameA, opts);
    const b = new MemoryPort(nameB, { ...opts, mac: opts.mac ? undefined : new Uint8Array([2, 0, 0, 0, 0, 2]) });
    a.peer = b;
    b.peer = a;
    return [a, b];
  }

  /** Queues a frame (vnet header included) for rxBurst; false (and a counted drop) when full or too big. */
  inject(frame: Uint8Array): boolean {
    const ok = !this.closed && this.rxq.push(frame, 0, frame.length);
    if (!ok) this.s.rxDropped++;
    return ok;
  }

  /** Frames this unlinked port has sent, oldest first, removing them (test helper; allocates). */
  drain(): Uint8Array[] {
    const out: Uint8Array[] = [];
    const tmp = new Uint8Array(this.maxFrame);
    for (;;) {
      const n = this.sent.shift(tmp, 0);
      if (n === 0) return out;
      out.push(tmp.slice(0, n));
    }
  }

  /** Frames waiting to be received. */
  get pending(): number {
    return this.rxq.size;
  }

  rxBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max: number): number {
    let n = 0;
    const lim = Math.min(max, offsets.length, lengths.length);
    while (n < lim && this.rxq.size > 0) {
      const len = this.rxq.shift(buf, offsets[n]);
      if (len === 0) break; // caller's slot too small: leave the frame queued
      lengths[n] = len;
      this.s.rxFrames++;
      this.s.rxBytes += len;
      n++;
    }
    return n;
  }

  txBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    let ok = 0;
    const lim = Math.min(count, offsets.length, lengths.length);
    for (let i = 0; i < lim; i++) {
      const off = offsets[i];
      const len = lengths[i];
      let accepted = false;
      if (!this.closed && len > VNET_HDR_LEN && off + len <= buf.length) {
        if (this.peer) {
          // A frame the peer's full queue refuses still left this port: the peer counts the drop,
          // as a kernel ring would.
          if (!this.peer.closed) {
            if (!this.peer.rxq.push(buf, off, len)) this.peer.s.rxDropped++;
            accepted = true;
          }
        } else {
          accepted = this.sent.push(buf, off, len);
        }
      }
      if (accepted) {
        ok++;
        this.s.txFrames++;
        this.s.txBytes += len;
      } else {
        this.s.txErrors++;
      }
    }
    if (count > lim) this.s.txErrors += count - lim;
    return ok;
  }

  wait(_timeoutMs: number): boolean {
    return this.rxq.size > 0;
  }

  /** Joined multicast addresses (aa:bb:...) and their join counts: a memory port filters nothing. */
  readonly multicast = new Map<string, number>();

  mcAdd(mac: Uint8Array): void {
    const k = macString(mac);
    this.multicast.set(k, (this.multicast.get(k) ?? 0) + 1);
  }

  mcDel(mac: Uint8Array): void {
    const k = macString(mac);
    const n = (this.multicast.get(k) ?? 0) - 1;
    if (n > 0) this.multicast.set(k, n);
    else this.multicast.delete(k);
  }

  stats(): PortStats {
    return { ...this.s };
  }

  close(): void {
    this.closed = true;
  }
}
