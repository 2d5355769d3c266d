// A two-port L2 forwarder: every frame received on one port is sent unchanged out of the other.
//
// Frames keep their virtio_net_hdr, so partial checksums and GSO metadata cross untouched; this is the
// burst loop tsvsd's data plane grows from (wait → rxBurst → txBurst), without any processing step.
import { native } from './native.ts';
import { VNET, type Port, type PortStats } from './port.ts';

/** Per-direction counters. */
export interface DirStats {
  frames: number;
  bytes: number;
  /** Frames whose vnet header carries a GSO type (a segment of up to 64 KB). */
  gsoFrames: number;
  /** Frames flagged NEEDS_CSUM (partial checksum, completed by whoever finally transmits it). */
  csumPartialFrames: number;
  /** Frames the egress port refused (txBurst accepted fewer than received). */
  txDropped: number;
  /** rxBurst calls that returned at least one frame (frames / bursts = average batch). */
  bursts: number;
  /** Largest frame seen, vnet header included. */
  maxFrame: number;
}

/** Snapshot of a forwarder's counters and its ports' own counters. */
export interface L2fwdStats {
  burst: number;
  aToB: DirStats;
  bToA: DirStats;
  a: PortStats;
  b: PortStats;
  /** Times the loop slept in poll because both ports were empty. */
  polls: number;
}

/** Forwarder tuning. */
export interface L2fwdOptions {
  /** Frames per rxBurst/txBurst (default 64). */
  burst?: number;
  /** Longest sleep in poll when idle, in ms (default 10): bounds signal/stop latency. */
  idleMs?: number;
}

const newDir = (): DirStats => ({ frames: 0, bytes: 0, gsoFrames: 0, csumPartialFrames: 0, txDropped: 0, bursts: 0, maxFrame: 0 });

/** One direction's preallocated burst buffer. */
class Lane {
  readonly buf: Uint8Array;
  readonly offsets: Uint32Array;
  readonly lengths: Uint32Array;
  readonly st = newDir();
  constructor(
    readonly from: Port,
    readonly to: Port,
    readonly burst: number,
  ) {
    const slot = (Math.max(from.maxFrame, to.maxFrame) + 63) & ~63;
    this.buf = new Uint8Array(slot * burst);
    this.offsets = new Uint32Array(burst);
    this.lengths = new Uint32Array(burst);
    for (let i = 0; i < burst; i++) this.offsets[i] = i * slot;
  }

  /** Moves one burst; returns the frames received. Hot path: no allocation. */
  move(): number {
    const n = this.from.rxBurst(this.buf, this.offsets, this.lengths, this.burst);
    if (n === 0) return 0;
    const st = this.st;
    const buf = this.buf;
    for (let i = 0; i < n; i++) {
      const off = this.offsets[i];
      const len = this.lengths[i];
      st.bytes += len;
      if (len > st.maxFrame) st.maxFrame = len;
      if (buf[off + VNET.GSO_TYPE] !== VNET.GSO_NONE) st.gsoFrames++;
      if (buf[off + VNET.FLAGS] & VNET.F_NEEDS_CSUM) st.csumPartialFrames++;
    }
    const sent = this.to.txBurst(buf, this.offsets, this.lengths, n);
    st.frames += n;
    st.txDropped += n - sent;
    st.bursts++;
    return n;
  }
}

/** Forwards between ports `a` and `b` until `stop()`. */
export class L2Forwarder {
  readonly burst: number;
  private readonly ab: Lane;
  private readonly ba: Lane;
  private readonly fds: Int32Array | null;
  private readonly idleMs: number;
  private polls = 0;
  private stopped = false;
  private done: Promise<void> | null = null;

  constructor(
    readonly a: Port,
    readonly b: Port,
    opts: L2fwdOptions = {},
  ) {
    this.burst = opts.burst ?? 64;
    if (!Number.isInteger(this.burst) || this.burst < 1 || this.burst > 1024) throw new RangeError('burst must be 1..1024');
    this.idleMs = opts.idleMs ?? 10;
    this.ab = new Lane(a, b, this.burst);
    this.ba = new Lane(b, a, this.burst);
    this.fds = a.fd >= 0 && b.fd >= 0 ? Int32Array.of(a.fd, b.fd) : null;
  }

  /**
   * One round: moves bursts in both directions until both ports are empty or `budget` frames have
   * moved; when nothing moved, sleeps in poll up to `timeoutMs`. Returns frames moved.
   */
  pump(timeoutMs: number, budget = 4096): number {
    let total = 0;
    for (;;) {
      const moved = this.ab.move() + this.ba.move();
      total += moved;
      if (moved === 0 || total >= budget) break;
    }
    if (total === 0 && timeoutMs > 0) {
      this.polls++;
      if (this.fds) native().pollFds(this.fds, timeoutMs);
    }
    return total;
  }

  /** Runs the loop, yielding to the event loop between rounds (signals, timers); resolves on stop(). */
  run(): Promise<void> {
    if (this.done) return this.done;
    this.done = new Promise<void>((resolve) => {
      const round = (): void => {
        if (this.stopped) return resolve();
        const moved = this.pump(this.idleMs);
        // fd-less ports (memory) cannot sleep in poll: back off on a timer instead of spinning.
        if (moved === 0 && !this.fds) setTimeout(round, 1);
        else setImmediate(round);
      };
      setImmediate(round);
    });
    return this.done;
  }

  /** Stops the loop after the current round. */
  stop(): Promise<void> {
    this.stopped = true;
    return this.done ?? Promise.resolve();
  }

  stats(): L2fwdStats {
    return { burst: this.burst, aToB: { ...this.ab.st }, bToA: { ...this.ba.st }, a: this.a.stats(), b: this.b.stats(), polls: this.polls };
  }
}
