// Traffic counters (conns, packets, bytes) for the total, each service and each dest, in one shared buffer.

/** Counter fields per stats slot. */
export const ST_CONNS = 0;
export const ST_INPKTS = 1;
export const ST_OUTPKTS = 2;
export const ST_INBYTES = 3;
export const ST_OUTBYTES = 4;
export const ST_FIELDS = 5;

/** Slot 0 holds the director's totals. */
export const ST_TOTAL = 0;

/** A snapshot of one slot's counters (already minus the -Z baseline). */
export interface StatsSnapshot {
  conns: number;
  inpkts: number;
  outpkts: number;
  inbytes: number;
  outbytes: number;
}

/**
 * Counters as float64 (exact to 2^53) in a SharedArrayBuffer: the packet path only adds to them, so
 * another thread can read them. `-Z` never writes them: it moves a private baseline instead
 * (the kernel's kstats0), so the writer never races a reset.
 */
export class StatsTable {
  readonly buffer: SharedArrayBuffer;
  readonly c: Float64Array;
  private readonly zero: Float64Array;
  private readonly freeSlots: number[] = [];
  private nextSlot = 1;
  readonly slots: number;

  constructor(slots = 65536) {
    this.slots = slots;
    this.buffer = new SharedArrayBuffer(slots * ST_FIELDS * 8);
    this.c = new Float64Array(this.buffer);
    this.zero = new Float64Array(slots * ST_FIELDS);
  }

  /** A fresh slot with zeroed counters, -1 when none is left. */
  alloc(): number {
    const s = this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.nextSlot < this.slots ? this.nextSlot++ : -1;
    if (s > 0) {
      this.c.fill(0, s * ST_FIELDS, s * ST_FIELDS + ST_FIELDS);
      this.zero.fill(0, s * ST_FIELDS, s * ST_FIELDS + ST_FIELDS);
    }
    return s;
  }

  release(slot: number): void {
    if (slot > 0) this.freeSlots.push(slot);
  }

  /** Raw counter (not baselined). */
  raw(slot: number, field: number): number {
    return this.c[slot * ST_FIELDS + field]!;
  }

  /** Counter as displayed: raw minus the -Z baseline. */
  get(slot: number, field: number): number {
    const k = slot * ST_FIELDS + field;
    return this.c[k]! - this.zero[k]!;
  }

  snapshot(slot: number): StatsSnapshot {
    return {
      conns: this.get(slot, ST_CONNS),
      inpkts: this.get(slot, ST_INPKTS),
      outpkts: this.get(slot, ST_OUTPKTS),
      inbytes: this.get(slot, ST_INBYTES),
      outbytes: this.get(slot, ST_OUTBYTES),
    };
  }

  /** -Z for one slot: the current counters become the zero point. */
  zeroSlot(slot: number): void {
    const k = slot * ST_FIELDS;
    for (let f = 0; f < ST_FIELDS; f++) this.zero[k + f] = this.c[k + f]!;
  }
}
