// The destination-address cache lblc and lblcr share: 1024 hash buckets, pooled entries, and the kernel's periodic expiry.

import type { Dest, Service } from '../types.ts';
import { addr6Fold, hash32 } from './common.ts';

/** CONFIG_IP_VS_LBLC_TAB_BITS / CONFIG_IP_VS_LBLCR_TAB_BITS default. */
export const LOCALITY_TAB_BITS = 10;
export const LOCALITY_TAB_SIZE = 1 << LOCALITY_TAB_BITS;
const TAB_MASK = LOCALITY_TAB_SIZE - 1;
/** The collector runs every 60 s (CHECK_EXPIRE_INTERVAL). */
export const CHECK_EXPIRE_INTERVAL_MS = 60_000;
/** Entries idle this long may go when the table is over its size (ENTRY_TIMEOUT). */
export const ENTRY_TIMEOUT_MS = 6 * 60_000;
/** Default of the lblc_expiration / lblcr_expiration sysctls: 24 h. */
export const DEFAULT_EXPIRATION_MS = 24 * 60 * 60_000;
/** Every 30th collector run is a full check against the expiration sysctl. */
const COUNT_FOR_FULL_EXPIRATION = 30;
/** Above this many entries the collector drops idle ones (IP_VS_LBLC_TAB_SIZE * 16). */
export const LOCALITY_MAX_SIZE = LOCALITY_TAB_SIZE * 16;

/**
 * A hash table from destination address to an entry index. Entries live in parallel typed arrays with
 * a free list, so a lookup or refresh never allocates and a new entry reuses a freed slot; the arrays
 * grow (doubling) only when every slot is in use. Buckets are doubly linked lists with new entries
 * at the head, as the kernel's hlist_add_head, so collector order matches the kernel's.
 */
export class LocalityTable {
  /** Per entry: the IPv4 address, or an IPv6 address's fold (its bucket key). */
  addr = new Uint32Array(64);
  /**
   * Per entry, four words: the full IPv6 address, which the kernel compares (ip_vs_addr_equal) while
   * it buckets by the fold. Allocated with the first IPv6 entry; a table holds the one family of its service.
   */
  addr6: Uint32Array | null = null;
  lastuse = new Float64Array(64);
  next = new Int32Array(64);
  prev = new Int32Array(64);
  readonly heads = new Int32Array(LOCALITY_TAB_SIZE).fill(-1);
  /** Number of live entries (the kernel's tbl->entries). */
  entries = 0;
  private freeHead = -1;
  private used = 0;
  private rover = 0;
  private counter = 1;
  /** Clock time of the next collector run. */
  nextCheck: number;

  constructor(
    now: number,
    /** Called when an entry is dropped, so the owner clears its payload. */
    private readonly onFree: (idx: number) => void,
    /** Called when the arrays grow, so the owner grows its payload arrays. */
    private readonly onGrow: (capacity: number) => void,
  ) {
    this.nextCheck = now + CHECK_EXPIRE_INTERVAL_MS;
  }

  get capacity(): number {
    return this.addr.length;
  }

  /** Entry index for a destination address, or -1. */
  get(addr: number): number {
    let i = this.heads[hash32(addr, LOCALITY_TAB_BITS)]!;
    while (i >= 0) {
      if (this.addr[i] === addr) return i;
      i = this.next[i]!;
    }
    return -1;
  }

  /** Entry index for an IPv6 destination address `a[ai..ai+3]`, or -1 (ip_vs_lblc_get for AF_INET6). */
  get6(a: ArrayLike<number>, ai: number): number {
    const w = this.addr6;
    if (w === null) return -1;
    const k = addr6Fold(a, ai);
    let i = this.heads[hash32(k, LOCALITY_TAB_BITS)]!;
    while (i >= 0) {
      const o = i << 2;
      if (this.addr[i] === k && w[o] === a[ai] && w[o + 1] === a[ai + 1] && w[o + 2] === a[ai + 2] && w[o + 3] === a[ai + 3]) return i;
      i = this.next[i]!;
    }
    return -1;
  }

  /** A new IPv6 entry at the head of the bucket of its fold. */
  add6(a: ArrayLike<number>, ai: number, now: number): number {
    const i = this.add(addr6Fold(a, ai), now);
    if (this.addr6 === null || this.addr6.length < this.addr.length * 4) {
      const w = new Uint32Array(this.addr.length * 4);
      if (this.addr6 !== null) w.set(this.addr6);
      this.addr6 = w;
    }
    const o = i << 2;
    for (let k = 0; k < 4; k++) this.addr6[o + k] = a[ai + k]!;
    return i;
  }

  /** A new entry at the head of its bucket. */
  add(addr: number, now: number): number {
    let i = this.freeHead;
    if (i >= 0) {
      this.freeHead = this.next[i]!;
    } else {
      if (this.used === this.addr.length) this.grow();
      i = this.used++;
    }
    const b = hash32(addr, LOCALITY_TAB_BITS);
    const h = this.heads[b]!;
    this.addr[i] = addr >>> 0;
    this.lastuse[i] = now;
    this.prev[i] = -1;
    this.next[i] = h;
    if (h >= 0) this.prev[h] = i;
    this.heads[b] = i;
    this.entries++;
    return i;
  }

  /** Unlinks and frees an entry. */
  remove(i: number): void {
    const p = this.prev[i]!;
    const n = this.next[i]!;
    if (p >= 0) this.next[p] = n;
    else this.heads[hash32(this.addr[i]!, LOCALITY_TAB_BITS)] = n;
    if (n >= 0) this.prev[n] = p;
    this.onFree(i);
    this.next[i] = this.freeHead;
    this.prev[i] = -1;
    this.freeHead = i;
    this.entries--;
  }

  /** Drops every entry (service done / scheduler change). */
  flush(): void {
    for (let b = 0; b < LOCALITY_TAB_SIZE; b++) {
      while (this.heads[b]! >= 0) this.remove(this.heads[b]!);
    }
  }

  /**
   * Runs the collector for every 60 s tick that has come due by `now`, each at its own due time, as
   * the kernel's timer would have. Ticks that only count up are skipped in O(1), and of several full
   * checks due while the table is within its size only the last is run: entries only age while no
   * packet is scheduled, so it drops a superset of what the earlier ones would have, and a full check
   * leaves the rover where it was.
   */
  runDue(now: number, expiration: number): void {
    const I = CHECK_EXPIRE_INTERVAL_MS;
    while (this.nextCheck <= now) {
      if (this.counter % COUNT_FOR_FULL_EXPIRATION === 0) {
        this.fullCheck(this.nextCheck, expiration);
        this.counter = 1;
        this.nextCheck += I;
        continue;
      }
      if (this.entries <= LOCALITY_MAX_SIZE) {
        const due = Math.floor((now - this.nextCheck) / I) + 1;
        const toFull = COUNT_FOR_FULL_EXPIRATION - (this.counter % COUNT_FOR_FULL_EXPIRATION);
        if (due <= toFull) {
          this.counter += due;
          this.nextCheck += due * I;
          return;
        }
        this.counter += toFull;
        this.nextCheck += toFull * I;
        // nextCheck is now a full-check tick; jump to the last one that is due.
        const left = Math.floor((now - this.nextCheck) / I) + 1;
        this.nextCheck += Math.floor((left - 1) / COUNT_FOR_FULL_EXPIRATION) * COUNT_FOR_FULL_EXPIRATION * I;
        continue;
      }
      this.checkExpire(this.nextCheck, expiration);
      this.nextCheck += I;
    }
  }

  /** One collector run (ip_vs_lblc_check_expire) at time `now`. */
  checkExpire(now: number, expiration: number): void {
    if (this.counter % COUNT_FOR_FULL_EXPIRATION === 0) {
      this.fullCheck(now, expiration);
      this.counter = 1;
      return;
    }
    if (this.entries <= LOCALITY_MAX_SIZE) {
      this.counter++;
      return;
    }
    let goal = Math.trunc(((this.entries - LOCALITY_MAX_SIZE) * 4) / 3);
    if (goal > LOCALITY_MAX_SIZE / 2) goal = LOCALITY_MAX_SIZE / 2;
    let j = this.rover;
    for (let k = 0; k < LOCALITY_TAB_SIZE; k++) {
      j = (j + 1) & TAB_MASK;
      let i = this.heads[j]!;
      while (i >= 0) {
        const nx = this.next[i]!;
        if (now >= this.lastuse[i]! + ENTRY_TIMEOUT_MS) {
          this.remove(i);
          goal--;
        }
        i = nx;
      }
      if (goal <= 0) break;
    }
    this.rover = j;
  }

  /** Drops every entry idle for at least `expiration` ms (ip_vs_lblc_full_check). */
  fullCheck(now: number, expiration: number): void {
    let j = this.rover;
    for (let k = 0; k < LOCALITY_TAB_SIZE; k++) {
      j = (j + 1) & TAB_MASK;
      let i = this.heads[j]!;
      while (i >= 0) {
        const nx = this.next[i]!;
        if (now >= this.lastuse[i]! + expiration) this.remove(i);
        i = nx;
      }
    }
    this.rover = j;
  }

  private grow(): void {
    const cap = this.addr.length * 2;
    const addr = new Uint32Array(cap);
    addr.set(this.addr);
    this.addr = addr;
    const lastuse = new Float64Array(cap);
    lastuse.set(this.lastuse);
    this.lastuse = lastuse;
    const next = new Int32Array(cap);
    next.set(this.next);
    this.next = next;
    const prev = new Int32Array(cap);
    prev.set(this.prev);
    this.prev = prev;
    this.onGrow(cap);
  }
}

/**
 * The lblc rule for "overloaded": more active conns than its weight while some dest of the service
 * is below half its weight. Distinct from the OVERLOAD flag, which the schedulers also honour.
 */
export function localityOverloaded(dest: Dest, svc: Service): boolean {
  if (dest.activeConns > dest.weight) {
    for (const d of svc.dests) {
      if (d.activeConns * 2 < d.weight) return true;
    }
  }
  return false;
}
