// Per-service index of the dest fields the least-load schedulers read, kept current as counters change, so a decision is O(1) or O(log n) instead of a list walk.

import { DEST_F, type Dest, type Fwd, type Scheduler, type Service } from '../types.ts';

const OVERLOAD = DEST_F.OVERLOAD;

/** What a LoadIndex ranks by: one kind per scheduler that uses it. */
export const IX = { LC: 0, WLC: 1, SED: 2, NQ: 3, FO: 4, OVF: 5, TWOS: 6 } as const;

/** The fields a TrackedDest starts with (those of Dest; counters default to 0). */
export interface DestInit {
  id: number;
  addr: number;
  addr6?: Uint32Array | null;
  port: number;
  fwd: Fwd;
  weight: number;
  lastWeight?: number;
  uThreshold?: number;
  lThreshold?: number;
  flags: number;
  activeConns?: number;
  inactConns?: number;
  persistConns?: number;
  svc: Service;
}

/**
 * A Dest whose weight, flags and conn counters are accessors: every write, wherever it happens
 * (bind/unbind, TCP state changes, edits, tests), updates the index of the service's scheduler at
 * once. The schedulers index only TrackedDests; a list holding plain Dest objects is walked as the
 * kernel walks it, so plain objects stay correct, only slower.
 */
export class TrackedDest implements Dest {
  readonly id: number;
  readonly addr: number;
  readonly addr6: Uint32Array | null;
  readonly port: number;
  fwd: Fwd;
  lastWeight: number;
  uThreshold: number;
  lThreshold: number;
  persistConns: number;
  svc: Service;
  /** Backing fields of the accessors (internal to the index). */
  _weight: number;
  _flags: number;
  _active: number;
  _inact: number;
  /** The index holding this dest and its position there (internal). */
  _ix: LoadIndex | null = null;
  _pos = -1;

  constructor(f: DestInit) {
    this.id = f.id;
    this.addr = f.addr;
    this.addr6 = f.addr6 ?? null;
    this.port = f.port;
    this.fwd = f.fwd;
    this.lastWeight = f.lastWeight ?? f.weight;
    this.uThreshold = f.uThreshold ?? 0;
    this.lThreshold = f.lThreshold ?? 0;
    this.persistConns = f.persistConns ?? 0;
    this.svc = f.svc;
    this._weight = f.weight;
    this._flags = f.flags;
    this._active = f.activeConns ?? 0;
    this._inact = f.inactConns ?? 0;
  }

  get weight(): number {
    return this._weight;
  }
  set weight(v: number) {
    this._weight = v;
    if (this._ix !== null) this._ix.update(this._pos);
  }
  get flags(): number {
    return this._flags;
  }
  set flags(v: number) {
    this._flags = v;
    if (this._ix !== null) this._ix.update(this._pos);
  }
  get activeConns(): number {
    return this._active;
  }
  set activeConns(v: number) {
    this._active = v;
    if (this._ix !== null) this._ix.update(this._pos);
  }
  get inactConns(): number {
    return this._inact;
  }
  set inactConns(v: number) {
    this._inact = v;
    if (this._ix !== null) this._ix.update(this._pos);
  }
}

/**
 * A tournament tree over the dest list in list order (leaf i = i-th dest; a node holds the position
 * of its subtree's winner, -1 none). A right-hand winner replaces the left-hand one only when strictly
 * better, so the root is the first best dest in list order: the dest the kernel's walk returns.
 * twos uses a Fenwick tree of eligible weights instead, to find a weighted pick by binary search.
 * Keys are doubles: loads and weights are integers and their products stay exact below 2^53, the same
 * arithmetic the walking code uses.
 */
export class LoadIndex {
  readonly kind: number;
  /** The dests in list order as last rebuilt. */
  list: Dest[] = [];
  n = 0;
  /** False when the list holds a dest that is not a TrackedDest: schedulers must walk the list. */
  tracked = true;
  /** Leaves start at `size` (a power of two >= n). */
  size = 1;
  w = new Float64Array(1);
  /** The scheduler's load measure per position (lc/wlc/twos: active*256 + inactive; sed/nq: active + 1). */
  oh = new Float64Array(1);
  /** nq: 1 when the dest has no active conn. */
  idle = new Uint8Array(1);
  win = new Int32Array(2).fill(-1);
  /** twos: Fenwick tree (1-based) of the weights of eligible dests, those weights by position (0 when not eligible), their sum. */
  bit = new Float64Array(2);
  bw = new Float64Array(1);
  total = 0;
  private topBit = 0;

  constructor(kind: number) {
    this.kind = kind;
  }

  /** True when the index describes `dests` and may answer instead of a walk. */
  valid(dests: readonly Dest[]): boolean {
    return this.tracked && dests.length === this.n && (this.n === 0 || dests[0] === this.list[0]);
  }

  /** Forget the current list: its dests stop reporting here. */
  detachAll(): void {
    for (const d of this.list) {
      if (d instanceof TrackedDest && d._ix === this) {
        d._ix = null;
        d._pos = -1;
      }
    }
    this.list = [];
    this.n = 0;
  }

  /** Rebuild from the service's list (slow path: dest added, removed, scheduler bound). */
  rebuild(dests: readonly Dest[]): void {
    this.detachAll();
    const n = dests.length;
    this.list = dests.slice();
    this.n = n;
    let size = 1;
    while (size < n) size <<= 1;
    this.size = size;
    if (this.w.length < size) {
      this.w = new Float64Array(size);
      this.oh = new Float64Array(size);
      this.idle = new Uint8Array(size);
      this.bw = new Float64Array(size);
      this.bit = new Float64Array(size + 1);
    }
    if (this.win.length < 2 * size) this.win = new Int32Array(2 * size);
    this.tracked = true;
    for (let i = 0; i < n; i++) {
      const d = dests[i]!;
      if (d instanceof TrackedDest) {
        d._ix = this;
        d._pos = i;
      } else this.tracked = false;
    }
    this.topBit = n === 0 ? 0 : 1 << (31 - Math.clz32(n));
    const win = this.win;
    if (this.kind === IX.TWOS) {
      this.bit.fill(0, 0, n + 1);
      this.total = 0;
      for (let i = 0; i < n; i++) {
        this.load(i);
        this.bitAdd(i, this.bw[i]!);
      }
      return;
    }
    for (let i = 0; i < size; i++) win[size + i] = i < n && this.load(i) ? i : -1;
    for (let k = size - 1; k >= 1; k--) win[k] = this.combine(win[2 * k]!, win[2 * k + 1]!);
  }

  /** Reads the dest at `pos` into the key arrays; true when the scheduler may choose it. */
  private load(pos: number): boolean {
    const d = this.list[pos]!;
    const w = d.weight;
    const a = d.activeConns;
    const kind = this.kind;
    this.w[pos] = w;
    let ok = (d.flags & OVERLOAD) === 0 && w > 0;
    switch (kind) {
      case IX.SED:
        this.oh[pos] = a + 1;
        break;
      case IX.NQ:
        this.oh[pos] = a + 1;
        this.idle[pos] = a === 0 ? 1 : 0;
        break;
      case IX.OVF:
        // ovf takes a dest only while its active conns do not exceed its weight.
        if (a > w) ok = false;
        break;
      case IX.FO:
        break;
      case IX.TWOS: {
        this.oh[pos] = a * 256 + d.inactConns;
        this.bw[pos] = ok ? w : 0;
        break;
      }
      default:
        this.oh[pos] = a * 256 + d.inactConns;
    }
    return ok;
  }

  /** The winner of left-hand `i` against right-hand `j`: j only when strictly better. */
  private combine(i: number, j: number): number {
    if (i < 0) return j;
    if (j < 0) return i;
    const w = this.w;
    const oh = this.oh;
    switch (this.kind) {
      case IX.LC:
        return oh[j]! < oh[i]! ? j : i;
      case IX.NQ:
        // The first idle dest wins outright; among busy ones, the smallest (active+1)/weight.
        if (this.idle[i] === 1) return i;
        if (this.idle[j] === 1) return j;
        return oh[i]! * w[j]! > oh[j]! * w[i]! ? j : i;
      case IX.FO:
      case IX.OVF:
        return w[j]! > w[i]! ? j : i;
      default: // WLC, SED: overhead/weight by cross-multiplication
        return oh[i]! * w[j]! > oh[j]! * w[i]! ? j : i;
    }
  }

  /** A field of the dest at `pos` changed: refresh its leaf and the winners above it. */
  update(pos: number): void {
    if (this.kind === IX.TWOS) {
      const old = this.bw[pos]!;
      this.load(pos);
      const now = this.bw[pos]!;
      if (now !== old) this.bitAdd(pos, now - old);
      return;
    }
    const win = this.win;
    let k = this.size + pos;
    const was = win[k]!;
    const w0 = this.w[pos]!;
    const oh0 = this.oh[pos]!;
    const idle0 = this.idle[pos]!;
    const leaf = this.load(pos) ? pos : -1;
    // A write this scheduler does not rank by (fo and an inactive count, say): nothing moves.
    if (leaf === was && this.w[pos] === w0 && this.oh[pos] === oh0 && this.idle[pos] === idle0) return;
    win[k] = leaf;
    for (k >>= 1; k >= 1; k >>= 1) {
      const old = win[k]!;
      const now = this.combine(win[2 * k]!, win[2 * k + 1]!);
      win[k] = now;
      // Same winner, and not the dest that changed: nothing above can change.
      if (now === old && old !== pos) break;
    }
  }

  /** Position of the first best dest, -1 none (tree kinds). */
  best(): number {
    return this.win[1]!;
  }

  private bitAdd(pos: number, delta: number): void {
    const bit = this.bit;
    this.total += delta;
    for (let i = pos + 1, n = this.n; i <= n; i += i & -i) bit[i] = bit[i]! + delta;
  }

  /**
   * twos: the first position whose running sum of eligible weights reaches r (1 <= r <= total), i.e.
   * the dest where the kernel's "r -= weight; r <= 0" walk stops.
   */
  firstReaching(r: number): number {
    const bit = this.bit;
    const n = this.n;
    let pos = 0;
    let rem = r;
    for (let step = this.topBit; step > 0; step >>= 1) {
      const nx = pos + step;
      if (nx <= n && bit[nx]! < rem) {
        pos = nx;
        rem -= bit[nx]!;
      }
    }
    // `pos` is the longest 1-based prefix still short of r; the dest after it, 0-based, is `pos`.
    return pos;
  }
}

/** init/done/addDest/delDest hooks that keep a LoadIndex of `kind` in svc.schedData. */
export function indexHooks(kind: number): {
  init(svc: Service): void;
  done(svc: Service): void;
  addDest(svc: Service, d: Dest): void;
  delDest(svc: Service, d: Dest): void;
} {
  const rebuild = (svc: Service): void => {
    let ix = svc.schedData;
    if (!(ix instanceof LoadIndex) || ix.kind !== kind) {
      if (ix instanceof LoadIndex) ix.detachAll();
      ix = new LoadIndex(kind);
      svc.schedData = ix;
    }
    (ix as LoadIndex).rebuild(svc.dests);
  };
  return {
    init: rebuild,
    done(svc) {
      if (svc.schedData instanceof LoadIndex) svc.schedData.detachAll();
      svc.schedData = null;
    },
    addDest: rebuild,
    delDest: rebuild,
  };
}

/** The service's index when it may answer for the current list, else null (walk the list). */
export function usableIndex(svc: Service): LoadIndex | null {
  const ix = svc.schedData;
  return ix instanceof LoadIndex && ix.valid(svc.dests) ? ix : null;
}

/**
 * A least-load scheduler answered from the load index: the index's best when it matches the list,
 * else the kernel's list walk `walk` (plain Dest objects, or a list the index has not seen yet).
 */
export function indexedScheduler(name: string, kind: number, walk: (svc: Service) => Dest | null): Scheduler {
  return {
    name,
    ...indexHooks(kind),
    schedule(svc) {
      const ix = usableIndex(svc);
      if (ix === null) return walk(svc);
      const p = ix.best();
      return p < 0 ? null : ix.list[p]!;
    },
  };
}
