// The fast-path map as a cache of the conn table: entries installed for eligible conns, counters folded back, idle expiry by last-seen.
import type { ConnTable } from '../ipvs/conn.ts';
import { CONN_F } from '../ipvs/conn.ts';
import { TCP_S } from '../ipvs/proto/tcp.ts';
import { Fwd } from '../ipvs/types.ts';
import { BPF_ANY, BPF_EXIST, E2BIG } from './bpf.ts';
import { KEY, VALUE, encodeKey, encodeValue, decodeCounters, type FastEntry } from './layout.ts';
import type { Side } from './entry.ts';

/** The map operations the cache needs (BpfHashMap has them). */
export interface FastMap {
  update(key: Uint8Array, value: Uint8Array, flags?: number): number;
  lookup(key: Uint8Array, out: Uint8Array): boolean;
  delete(key: Uint8Array): boolean;
  /** Every element in batches; false when the kernel cannot (the cache then reads entry by entry). */
  forEach?(fn: (keys: Uint8Array, values: Uint8Array, index: number) => void): boolean;
}

/** What the cache asks of the director. */
export interface FastCacheHooks {
  /** Fills `out` with the entry for a direction of conn i, or returns null when the fast path cannot carry it. */
  entryFor(i: number, side: Side, out: FastEntry): FastEntry | null;
  /** Counters the program kept for a direction, to be added to the conn's service, dest and total stats. */
  count(i: number, side: Side, packets: number, bytes: number): void;
  /** True while `tsvs trace` or --pcap watches conn i: every packet of it must stay on the TS path. */
  watched(i: number): boolean;
  /** Called the first time the map refuses an entry for being full (the operator should hear it once). */
  mapFull?(): void;
}

/** Cache counters (exposed with the director's). */
export interface FastCacheStats {
  installs: number;
  removes: number;
  /** Directions left on the TS path because the map was full. */
  full: number;
  /** Other refused updates (errno other than E2BIG). */
  errors: number;
  /** Expiries postponed because the fast path carried the conn meanwhile. */
  kept: number;
}

const BIT_IN = 1;
const BIT_OUT = 2;

/**
 * Keeps the map in step with the conn table, which stays the authority. `consider(i)` runs after the
 * TS path forwarded a packet of conn i: an eligible conn (TCP ESTABLISHED, or UDP; not a template, not
 * one-packet, not watched) gets its directions installed, a conn that stopped being eligible (a FIN,
 * an RST: the program punts those, so the TS state machine sees them) loses them. `onUnhash(i)` runs
 * when conn i leaves the index (expiry, deletion, a new conn taking over its key): its entries go
 * with their last counters folded. `onExpire(i)` runs when its timer fires: if the program carried
 * it within its timeout, the timer is re-armed for the rest and true is returned (the conn stays).
 * `fold()` adds what the program counted since the last fold to the stats.
 */
export class FastCache {
  readonly stats: FastCacheStats = { installs: 0, removes: 0, full: 0, errors: 0, kept: 0 };
  /** Per conn: which directions are in the map. */
  private readonly installed: Uint8Array;
  /** Per conn and direction: packets and bytes already folded (in: 0, 1; out: 2, 3). */
  private readonly folded: Float64Array;
  /** Per conn: monotonic ms of the install (idle time when the program never saw a packet). */
  private readonly installedAt: Float64Array;
  private readonly key = new Uint8Array(KEY.SIZE);
  private readonly val = new Uint8Array(VALUE.SIZE);
  private readonly fresh = new Uint8Array(VALUE.SIZE);
  private readonly entry: FastEntry = { method: 3, forward: false, mtu: 0, ifindex: 0, addr: 0, port: 0, dmac: new Uint8Array(6), smac: new Uint8Array(6), tunSaddr: 0, tunDaddr: 0 };
  /** Conns with at least one direction installed (for fold()). */
  private readonly live = new Set<number>();

  constructor(
    private readonly map: FastMap,
    private readonly ct: ConnTable,
    private readonly hooks: FastCacheHooks,
    /** CLOCK_MONOTONIC in ms, the clock of bpf_ktime_get_ns. */
    private readonly monoMs: () => number = () => Number(process.hrtime.bigint() / 1_000_000n),
  ) {
    this.installed = new Uint8Array(ct.capacity);
    this.folded = new Float64Array(ct.capacity * 4);
    this.installedAt = new Float64Array(ct.capacity);
  }

  /** Directions of conn i in the map (bit 0: client side, bit 1: NAT reply). */
  installedOf(i: number): number {
    return this.installed[i]!;
  }

  /** How many conns have entries. */
  get size(): number {
    return this.live.size;
  }

  private eligible(i: number): boolean {
    const ct = this.ct;
    if ((ct.flags[i]! & (CONN_F.TEMPLATE | CONN_F.ONE_PACKET)) !== 0 || !ct.isUsed(i)) return false;
    const proto = ct.proto[i]!;
    if (proto === 6 ? ct.state[i] !== TCP_S.ESTABLISHED : proto !== 17) return false;
    return !this.hooks.watched(i);
  }

  private keyOf(i: number, side: Side): Uint8Array {
    const ct = this.ct;
    return side === 'in'
      ? encodeKey(this.key, ct.proto[i]!, ct.caddr[i]!, ct.vaddr[i]!, ct.cport[i]!, ct.vport[i]!)
      : encodeKey(this.key, ct.proto[i]!, ct.daddr[i]!, ct.caddr[i]!, ct.dport[i]!, ct.cport[i]!);
  }

  /** After the TS path forwarded a packet of conn i: install or remove its entries as it is now. */
  consider(i: number): void {
    const has = this.installed[i]!;
    if (!this.eligible(i)) {
      if (has !== 0) this.remove(i);
      return;
    }
    if ((has & BIT_IN) === 0) this.install(i, 'in', BIT_IN);
    if ((has & BIT_OUT) === 0 && (this.ct.flags[i]! & CONN_F.FWD_MASK) === Fwd.Masq) this.install(i, 'out', BIT_OUT);
  }

  private install(i: number, side: Side, bit: number): void {
    const e = this.hooks.entryFor(i, side, this.entry);
    if (e === null) return;
    const r = this.map.update(this.keyOf(i, side), encodeValue(this.val, e, side === 'out'), BPF_ANY);
    if (r !== 0) {
      if (r === E2BIG) {
        if (this.stats.full++ === 0) this.hooks.mapFull?.();
      } else this.stats.errors++;
      return;
    }
    if (this.installed[i] === 0) {
      this.installedAt[i] = this.monoMs();
      this.live.add(i);
    }
    this.installed[i] = this.installed[i]! | bit;
    const k = i * 4 + (side === 'in' ? 0 : 2);
    this.folded[k] = 0;
    this.folded[k + 1] = 0;
    this.stats.installs++;
  }

  /** Folds and deletes every entry of conn i (it leaves the index, or stopped being eligible). */
  remove(i: number): void {
    const has = this.installed[i]!;
    if (has === 0) return;
    this.foldConn(i);
    if (has & BIT_IN) this.map.delete(this.keyOf(i, 'in'));
    if (has & BIT_OUT) this.map.delete(this.keyOf(i, 'out'));
    this.installed[i] = 0;
    this.live.delete(i);
    this.stats.removes++;
  }

  /** Conn i leaves the index: its keys may be taken by another conn next. */
  onUnhash(i: number): void {
    this.remove(i);
  }

  /**
   * Conn i's timer fired. When the program forwarded a packet of it less than its timeout ago, the
   * timer is re-armed for the rest of that timeout and true is returned; false lets it expire.
   */
  onExpire(i: number): boolean {
    if (this.installed[i] === 0) return false;
    const last = this.foldConn(i);
    const idleMs = this.monoMs() - (last > 0 ? last : this.installedAt[i]!);
    const rest = this.ct.timeout[i]! * 1000 - idleMs;
    if (this.ct.timeout[i] === 0 || rest <= 0) return false;
    this.ct.armAt(i, this.ct.now + rest);
    this.stats.kept++;
    return true;
  }

  /**
   * Re-derives every installed entry from the director's state as it is now: a changed one (a
   * neighbour's new MAC, a route moved to another port) is rewritten after its counters are folded,
   * one that can no longer be filled (the neighbour
   * failed) takes its conn off the fast path. Folds everything on the way (`fold(true)`).
   * A rewritten entry keeps its counters and last-seen.
   */
  refresh(): void {
    this.fold(true);
  }

  /** Whether the freshly derived entry of conn i's `side` differs from the value bytes at `vals[vo]`; fills this.fresh. Null: it cannot be derived any more. */
  private differs(i: number, side: Side, vals: Uint8Array, vo: number): boolean | null {
    const e = this.hooks.entryFor(i, side, this.entry);
    if (e === null) return null;
    encodeValue(this.fresh, e, side === 'out');
    for (let b = 0; b < VALUE.PACKETS; b++) if (this.fresh[b] !== vals[vo + b]) return true;
    return false;
  }

  /**
   * Writes this.fresh as conn i's `side` entry, keeping the counters and last-seen the entry has now:
   * zeroed, a conn the program carried until just before would look idle since its install to
   * onExpire (and expire while in use). The folded marks stay, so nothing is counted twice; what the
   * program counts between this lookup and the update is lost (an instant, once per change).
   */
  private rewrite(i: number, side: Side): void {
    const key = this.keyOf(i, side);
    if (!this.map.lookup(key, this.val)) return;
    this.fresh.set(this.val.subarray(VALUE.PACKETS, VALUE.SIZE), VALUE.PACKETS);
    this.map.update(key, this.fresh, BPF_EXIST);
  }

  /** Removes the entries of every conn for which `pred` is true (a real server deleted, a trace started). */
  removeWhere(pred: (i: number) => boolean): void {
    for (const i of [...this.live]) if (pred(i)) this.remove(i);
  }

  /** Removes every entry (counters folded). */
  removeAll(): void {
    this.removeWhere(() => true);
  }

  /**
   * Adds what the program counted since the last fold to the stats, for every conn with entries: the
   * whole map read in batches (each entry's key finds its conn in the table's index), or entry by
   * entry where the kernel has no batch operations.
   */
  fold(refresh = false): void {
    if (this.live.size === 0) return;
    const ct = this.ct;
    let dv: DataView | null = null;
    const gone: number[] = [];
    const changed: [number, Side][] = [];
    const batched = this.map.forEach?.((keys, vals, idx) => {
      const ko = idx * KEY.SIZE;
      const vo = idx * VALUE.SIZE;
      const reply = vals[vo + VALUE.SIDE] === 1;
      const u32 = (at: number) => ((keys[at]! << 24) | (keys[at + 1]! << 16) | (keys[at + 2]! << 8) | keys[at + 3]!) >>> 0;
      const u16 = (at: number) => (keys[at]! << 8) | keys[at + 1]!;
      const proto = keys[ko + KEY.PROTO]!;
      const s = u32(ko + KEY.SADDR);
      const d = u32(ko + KEY.DADDR);
      const sp = u16(ko + KEY.SPORT);
      const dp = u16(ko + KEY.DPORT);
      const i = reply ? ct.lookupOut(proto, s, sp, d, dp) : ct.lookupIn(proto, s, sp, d, dp);
      if (i < 0 || (this.installed[i]! & (reply ? BIT_OUT : BIT_IN)) === 0) return;
      if (dv === null || dv.buffer !== vals.buffer) dv = new DataView(vals.buffer, vals.byteOffset, vals.byteLength);
      const side: Side = reply ? 'out' : 'in';
      this.foldOne(i, side, Number(dv.getBigUint64(vo + VALUE.PACKETS, true)), Number(dv.getBigUint64(vo + VALUE.BYTES, true)));
      if (!refresh) return;
      const chg = this.differs(i, side, vals, vo);
      if (chg === null) gone.push(i);
      else if (chg) changed.push([i, side]);
    });
    if (batched !== true) {
      for (const i of this.live) this.foldConn(i);
      if (refresh) {
        for (const i of this.live) {
          for (const [side, bit] of [['in', BIT_IN], ['out', BIT_OUT]] as const) {
            if ((this.installed[i]! & bit) === 0 || !this.map.lookup(this.keyOf(i, side), this.val)) continue;
            const chg = this.differs(i, side, this.val, 0);
            if (chg === null) gone.push(i);
            else if (chg) changed.push([i, side]);
          }
        }
      }
    }
    // Applied after the walk (the batch buffers and this.fresh are reused meanwhile).
    for (const [i, side] of changed) {
      const e = this.hooks.entryFor(i, side, this.entry);
      if (e === null) continue;
      encodeValue(this.fresh, e, side === 'out');
      this.rewrite(i, side);
    }
    for (const i of gone) this.remove(i);
  }

  /** Folds one direction's counters as read from the map. */
  private foldOne(i: number, side: Side, packets: number, bytes: number): void {
    const k = i * 4 + (side === 'in' ? 0 : 2);
    const dp = packets - this.folded[k]!;
    if (dp <= 0) return;
    const db = bytes - this.folded[k + 1]!;
    this.folded[k] = packets;
    this.folded[k + 1] = bytes;
    this.hooks.count(i, side, dp, db);
  }

  /** Folds conn i's directions; returns the latest last-seen (monotonic ms, 0: never). */
  private foldConn(i: number): number {
    const has = this.installed[i]!;
    let last = 0;
    for (const [side, bit] of [['in', BIT_IN], ['out', BIT_OUT]] as const) {
      if ((has & bit) === 0 || !this.map.lookup(this.keyOf(i, side), this.val)) continue;
      const c = decodeCounters(this.val);
      this.foldOne(i, side, c.packets, c.bytes);
      const ms = Number(c.lastSeenNs / 1_000_000n);
      if (ms > last) last = ms;
    }
    return last;
  }
}
