// The connection table: struct-of-arrays in typed arrays, an open-addressing 5-tuple index and a timer wheel.

/** Conn flags (IP_VS_CONN_F_*, low 16 bits as the kernel's uapi) plus table-private bits above. */
export const CONN_F = {
  FWD_MASK: 0x7,
  SYNC: 0x20,
  HASHED: 0x40,
  NOOUTPUT: 0x80,
  INACTIVE: 0x100,
  TEMPLATE: 0x1000,
  ONE_PACKET: 0x2000,
  /** Private: the slot holds a live conn. */
  USED: 1 << 24,
  /** Private: the real-server-side key (NAT replies) is in the index. */
  HASHED_OUT: 1 << 25,
} as const;

/** Template state bit (IP_VS_CTPL_S_ASSURED). */
export const CTPL_S_ASSURED = 1;

const F_USED = CONN_F.USED;
const F_HASHED = CONN_F.HASHED;
const F_HASHED_OUT = CONN_F.HASHED_OUT;
const F_TEMPLATE = CONN_F.TEMPLATE;

/** Options for a ConnTable. */
export interface ConnTableOptions {
  /** Timer wheel granularity in ms; conns expire at most one tick late. */
  tickMs?: number;
  /** Timer wheel slots (power of two). */
  wheelSlots?: number;
  /** Hash seed (random by default, as the kernel's jhash seed). */
  seed?: number;
}

function mix(h: number, k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  k = Math.imul(k, 0x1b873593);
  h ^= k;
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

function fmix(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  return h ^ (h >>> 16);
}

// Key kinds keep the three key spaces apart in one index.
const K_IN = 0;
const K_OUT = 1;
const K_TPL = 2;

/**
 * Fixed-capacity connection table. A conn is an integer index into the column arrays; lookups
 * return that index or -1 and never allocate. Keys: client side (proto, caddr, cport, vaddr, vport)
 * for every hashed conn (templates in their own key space) and real-server side (proto, daddr,
 * dport, laddr, lport: the client's address for NAT, the LIP for FullNAT) for NAT and FullNAT conns. Expiry: a lazy timer wheel; `tick(now)` calls `onExpire` for
 * each due conn, which must either `free` it or re-`arm` it.
 */
export class ConnTable {
  readonly capacity: number;
  readonly caddr: Uint32Array;
  readonly vaddr: Uint32Array;
  readonly daddr: Uint32Array;
  readonly cport: Uint16Array;
  readonly vport: Uint16Array;
  readonly dport: Uint16Array;
  /**
   * The source the real server sees (the real-server-side key's destination): the client's own
   * address and port, except for FullNAT conns, whose local address and port (LIP:lport) go here.
   */
  readonly laddr: Uint32Array;
  readonly lport: Uint16Array;
  readonly proto: Uint8Array;
  readonly state: Uint8Array;
  readonly flags: Uint32Array;
  /** Dest id, -1 none. */
  readonly dest: Int32Array;
  /** Current timeout in seconds (re-armed from it). */
  readonly timeout: Uint32Array;
  /** Absolute expiry time in ms. */
  readonly expires: Float64Array;
  /** Controlling conn (template) index, -1 none. */
  readonly control: Int32Array;
  /** Number of conns this one controls. */
  readonly nControl: Int32Array;
  /** Packets seen from the client side. */
  readonly inPkts: Uint32Array;
  /** The state when the conn was last synced (cp->old_state), for the sync master. */
  readonly oldState: Uint8Array;
  /** When the conn is next due a sync refresh, ms, low 2 bits the retries (cp->sync_endtime). */
  readonly syncEndtime: Float64Array;

  // timer wheel (tnext doubles as the free-list link)
  private readonly tnext: Int32Array;
  private readonly tprev: Int32Array;
  private readonly tslot: Int32Array;
  private readonly wheel: Int32Array;
  private readonly wheelMask: number;
  readonly tickMs: number;
  private base = NaN;
  private curTick = 0;
  private scanNext = -1;

  // index
  private readonly refs: Int32Array;
  private readonly tags: Int32Array;
  private readonly mask: number;
  private readonly seed: number;

  private freeHead: number;
  /** Live conns. */
  count = 0;
  /** Live conns a sync backup installed (flag SYNC), counted for their share of the table. */
  syncCount = 0;
  /** Conns refused because the table was full (and no entry could be early-dropped). */
  overflow = 0;
  /** Entries evicted to make room for a new conn when the table was full (see Ipvs.earlyDrop). */
  earlyDrop = 0;
  /** The time of the last tick (ms); per-packet re-arms use it. */
  now = 0;
  /** Called by tick() for each due conn; must free or re-arm it. */
  onExpire: (idx: number) => void = (i) => this.free(i);
  /** Called when a hashed conn leaves the index (the fast path's cache drops its entries then). */
  onUnhash: ((idx: number) => void) | null = null;

  constructor(capacity = 1 << 20, opts: ConnTableOptions = {}) {
    if (!Number.isInteger(capacity) || capacity < 1 || capacity > 1 << 28) throw new RangeError('bad capacity');
    this.capacity = capacity;
    this.caddr = new Uint32Array(capacity);
    this.vaddr = new Uint32Array(capacity);
    this.daddr = new Uint32Array(capacity);
    this.cport = new Uint16Array(capacity);
    this.vport = new Uint16Array(capacity);
    this.dport = new Uint16Array(capacity);
    this.laddr = new Uint32Array(capacity);
    this.lport = new Uint16Array(capacity);
    this.proto = new Uint8Array(capacity);
    this.state = new Uint8Array(capacity);
    this.flags = new Uint32Array(capacity);
    this.dest = new Int32Array(capacity);
    this.timeout = new Uint32Array(capacity);
    this.expires = new Float64Array(capacity);
    this.control = new Int32Array(capacity);
    this.nControl = new Int32Array(capacity);
    this.inPkts = new Uint32Array(capacity);
    this.oldState = new Uint8Array(capacity);
    this.syncEndtime = new Float64Array(capacity);
    this.tnext = new Int32Array(capacity);
    this.tprev = new Int32Array(capacity);
    this.tslot = new Int32Array(capacity);
    // Two keys for a NAT conn, kept at most half full: 4 slots per conn, rounded up to a power of two.
    let slots = 16;
    while (slots < capacity * 4) slots *= 2;
    this.refs = new Int32Array(slots).fill(-1);
    this.tags = new Int32Array(slots);
    this.mask = slots - 1;
    this.seed = (opts.seed ?? (Math.random() * 0x100000000)) | 0;
    this.tickMs = opts.tickMs ?? 100;
    const ws = opts.wheelSlots ?? 4096;
    if ((ws & (ws - 1)) !== 0) throw new RangeError('wheelSlots must be a power of two');
    this.wheel = new Int32Array(ws).fill(-1);
    this.wheelMask = ws - 1;
    for (let i = 0; i < capacity; i++) this.tnext[i] = i + 1 < capacity ? i + 1 : -1;
    this.tslot.fill(-1);
    this.freeHead = 0;
  }

  /** Bytes of typed-array memory held per conn of capacity (columns + index + wheel). */
  bytesPerConn(): number {
    let b = 0;
    for (const a of [this.caddr, this.vaddr, this.daddr, this.cport, this.vport, this.dport, this.laddr, this.lport, this.proto, this.state,
      this.flags, this.dest, this.timeout, this.expires, this.control, this.nControl, this.inPkts, this.oldState, this.syncEndtime, this.tnext,
      this.tprev, this.tslot, this.refs, this.tags, this.wheel]) b += a.byteLength;
    return b / this.capacity;
  }

  /**
   * Take a free slot and fill it; not yet hashed nor armed. Returns -1 (and counts an overflow)
   * when the table is full.
   */
  alloc(proto: number, caddr: number, cport: number, vaddr: number, vport: number, daddr: number, dport: number,
    flags: number, dest: number): number {
    const i = this.freeHead;
    if (i < 0) {
      this.overflow++;
      return -1;
    }
    this.freeHead = this.tnext[i]!;
    this.tnext[i] = -1;
    this.tprev[i] = -1;
    this.tslot[i] = -1;
    this.proto[i] = proto;
    this.caddr[i] = caddr;
    this.cport[i] = cport;
    this.vaddr[i] = vaddr;
    this.vport[i] = vport;
    this.daddr[i] = daddr;
    this.dport[i] = dport;
    this.laddr[i] = caddr;
    this.lport[i] = cport;
    this.flags[i] = ((flags & 0xffff) | F_USED) >>> 0;
    this.dest[i] = dest;
    this.state[i] = 0;
    this.timeout[i] = 3;
    this.expires[i] = 0;
    this.control[i] = -1;
    this.nControl[i] = 0;
    this.inPkts[i] = 0;
    this.oldState[i] = 0;
    this.syncEndtime[i] = Math.floor(this.now / 4) * 4;
    this.count++;
    if (flags & CONN_F.SYNC) this.syncCount++;
    return i;
  }

  /** Unhash, disarm and return the slot to the free list. */
  free(i: number): void {
    if ((this.flags[i]! & F_USED) === 0) return;
    this.unhash(i);
    this.unlinkTimer(i);
    if (this.flags[i]! & CONN_F.SYNC) this.syncCount--;
    this.flags[i] = 0;
    this.tnext[i] = this.freeHead;
    this.freeHead = i;
    this.count--;
  }

  /** Whether slot i holds a live conn. */
  isUsed(i: number): boolean {
    return (this.flags[i]! & F_USED) !== 0;
  }

  // ---- index ----

  private keyHash(kind: number, proto: number, a1: number, p1: number, a2: number, p2: number): number {
    let h = this.seed;
    h = mix(h, a1);
    h = mix(h, a2);
    h = mix(h, ((p1 << 16) | p2) | 0);
    h = mix(h, proto | (kind << 8));
    return fmix(h ^ 20);
  }

  private hashOf(i: number, side: number): number {
    if (side === 1) return this.keyHash(K_OUT, this.proto[i]!, this.daddr[i]!, this.dport[i]!, this.laddr[i]!, this.lport[i]!);
    const kind = (this.flags[i]! & F_TEMPLATE) !== 0 ? K_TPL : K_IN;
    return this.keyHash(kind, this.proto[i]!, this.caddr[i]!, this.cport[i]!, this.vaddr[i]!, this.vport[i]!);
  }

  private insertRef(h: number, ref: number): void {
    const refs = this.refs;
    const mask = this.mask;
    let s = h & mask;
    while (refs[s]! >= 0) s = (s + 1) & mask;
    refs[s] = ref;
    this.tags[s] = h;
  }

  private removeRef(h: number, ref: number): void {
    const refs = this.refs;
    const tags = this.tags;
    const mask = this.mask;
    let s = h & mask;
    for (;;) {
      const r = refs[s]!;
      if (r < 0) return;
      if (r === ref) break;
      s = (s + 1) & mask;
    }
    // Backward-shift deletion: no tombstones, probe chains stay short.
    let hole = s;
    let j = s;
    for (;;) {
      j = (j + 1) & mask;
      const r = refs[j]!;
      if (r < 0) break;
      const home = tags[j]! & mask;
      if (((j - home) & mask) >= ((j - hole) & mask)) {
        refs[hole] = r;
        tags[hole] = tags[j]!;
        hole = j;
      }
    }
    refs[hole] = -1;
  }

  /** Put conn i into the index: its client-side key, and the real-server-side key when `withOut`. */
  hash(i: number, withOut: boolean): void {
    const f = this.flags[i]!;
    if ((f & F_HASHED) === 0) {
      this.insertRef(this.hashOf(i, 0), i << 1);
      this.flags[i] = (this.flags[i]! | F_HASHED) >>> 0;
    }
    if (withOut && (f & F_HASHED_OUT) === 0) {
      this.insertRef(this.hashOf(i, 1), (i << 1) | 1);
      this.flags[i] = (this.flags[i]! | F_HASHED_OUT) >>> 0;
    }
  }

  /** Take conn i out of the index (it stays allocated and armed). */
  unhash(i: number): void {
    const f = this.flags[i]!;
    if (this.onUnhash !== null && (f & (F_HASHED | F_HASHED_OUT)) !== 0) this.onUnhash(i);
    if (f & F_HASHED) this.removeRef(this.hashOf(i, 0), i << 1);
    if (f & F_HASHED_OUT) this.removeRef(this.hashOf(i, 1), (i << 1) | 1);
    this.flags[i] = (f & ~(F_HASHED | F_HASHED_OUT)) >>> 0;
  }

  /** A non-template conn by its client-side key (a client→VIP packet's saddr, sport, daddr, dport). */
  lookupIn(proto: number, saddr: number, sport: number, daddr: number, dport: number): number {
    const h = this.keyHash(K_IN, proto, saddr, sport, daddr, dport);
    const refs = this.refs;
    const tags = this.tags;
    const mask = this.mask;
    let s = h & mask;
    for (;;) {
      const r = refs[s]!;
      if (r < 0) return -1;
      if (tags[s] === h && (r & 1) === 0) {
        const i = r >> 1;
        if (this.caddr[i] === saddr && this.cport[i] === sport && this.vaddr[i] === daddr && this.vport[i] === dport
          && this.proto[i] === proto && (this.flags[i]! & F_TEMPLATE) === 0) return i;
      }
      s = (s + 1) & mask;
    }
  }

  /** A persistence template by (proto, client net, vaddr-or-fwmark, vport); cport is always 0. */
  lookupTemplate(proto: number, caddr: number, vaddr: number, vport: number): number {
    const h = this.keyHash(K_TPL, proto, caddr, 0, vaddr, vport);
    const refs = this.refs;
    const tags = this.tags;
    const mask = this.mask;
    let s = h & mask;
    for (;;) {
      const r = refs[s]!;
      if (r < 0) return -1;
      if (tags[s] === h && (r & 1) === 0) {
        const i = r >> 1;
        if (this.caddr[i] === caddr && this.cport[i] === 0 && this.vaddr[i] === vaddr && this.vport[i] === vport
          && this.proto[i] === proto && (this.flags[i]! & F_TEMPLATE) !== 0) return i;
      }
      s = (s + 1) & mask;
    }
  }

  /** A NAT or FullNAT conn by its real-server-side key (a RS→client or RS→LIP reply's saddr, sport, daddr, dport). */
  lookupOut(proto: number, saddr: number, sport: number, daddr: number, dport: number): number {
    const h = this.keyHash(K_OUT, proto, saddr, sport, daddr, dport);
    const refs = this.refs;
    const tags = this.tags;
    const mask = this.mask;
    let s = h & mask;
    for (;;) {
      const r = refs[s]!;
      if (r < 0) return -1;
      if (tags[s] === h && (r & 1) === 1) {
        const i = r >> 1;
        if (this.daddr[i] === saddr && this.dport[i] === sport && this.laddr[i] === daddr && this.lport[i] === dport
          && this.proto[i] === proto) return i;
      }
      s = (s + 1) & mask;
    }
  }

  // ---- timer wheel ----

  private tickOf(ms: number): number {
    if (this.base !== this.base) this.base = ms;
    const t = Math.floor((ms - this.base) / this.tickMs);
    return t < 0 ? 0 : t;
  }

  private linkTimer(i: number, t: number): void {
    const s = t & this.wheelMask;
    const head = this.wheel[s]!;
    this.tnext[i] = head;
    this.tprev[i] = -1;
    if (head >= 0) this.tprev[head] = i;
    this.wheel[s] = i;
    this.tslot[i] = t;
  }

  private unlinkTimer(i: number): void {
    const t = this.tslot[i]!;
    if (t < 0) return;
    const n = this.tnext[i]!;
    const p = this.tprev[i]!;
    if (i === this.scanNext) this.scanNext = n;
    if (p >= 0) this.tnext[p] = n;
    else this.wheel[t & this.wheelMask] = n;
    if (n >= 0) this.tprev[n] = p;
    this.tnext[i] = -1;
    this.tprev[i] = -1;
    this.tslot[i] = -1;
  }

  /**
   * Re-arm conn i to expire `timeout[i]` seconds after `now` (the per-packet ip_vs_conn_put).
   * Pushing the expiry later costs one store; the wheel catches up lazily.
   */
  arm(i: number): void {
    this.armAt(i, this.now + this.timeout[i]! * 1000);
  }

  /** Arm conn i to expire at an absolute time (ms). */
  armAt(i: number, at: number): void {
    this.expires[i] = at;
    let t = this.tickOf(at);
    if (t < this.curTick) t = this.curTick;
    const cur = this.tslot[i]!;
    if (cur < 0) this.linkTimer(i, t);
    else if (t < cur) {
      this.unlinkTimer(i);
      this.linkTimer(i, t);
    }
  }

  /** Make conn i due on the next tick (ip_vs_conn_expire_now). */
  expireNow(i: number): void {
    this.armAt(i, this.now);
  }

  /**
   * Advance the clock: every conn whose expiry lies in a fully elapsed wheel tick is handed to
   * `onExpire`. Returns the number of conns handed over.
   */
  tick(nowMs: number): number {
    if (nowMs > this.now) this.now = nowMs;
    const end = this.tickOf(this.now);
    let t = this.curTick;
    if (end - t > this.wheelMask + 1) t = end - (this.wheelMask + 1);
    let n = 0;
    const now = this.now;
    for (; t < end; t++) {
      const slot = t & this.wheelMask;
      // Arms made while this slot is scanned must land in a later tick, never behind the scan.
      this.curTick = t + 1;
      let i = this.wheel[slot]!;
      while (i >= 0) {
        this.scanNext = this.tnext[i]!;
        if (this.expires[i]! <= now) {
          this.unlinkTimer(i);
          n++;
          this.onExpire(i);
        } else {
          const e = this.tickOf(this.expires[i]!);
          if ((e & this.wheelMask) !== slot || e <= t) {
            this.unlinkTimer(i);
            this.linkTimer(i, e > t ? e : t + 1);
          } else this.tslot[i] = e;
        }
        i = this.scanNext;
      }
    }
    this.scanNext = -1;
    this.curTick = end;
    return n;
  }

  /** Next live conn index at or after `from`, -1 at the end (slow-path listing). */
  next(from: number): number {
    const f = this.flags;
    for (let i = from < 0 ? 0 : from; i < this.capacity; i++) if (f[i]! & F_USED) return i;
    return -1;
  }

  /** Milliseconds until conn i expires (as of the last tick). */
  remainingMs(i: number): number {
    const r = this.expires[i]! - this.now;
    return r > 0 ? r : 0;
  }
}
