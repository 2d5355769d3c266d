// The rate estimator (ip_vs_est.c): every 2 s, a 1/4-weight EWMA of conns, packets and bytes per second.

import { ST_CONNS, ST_FIELDS, ST_INBYTES, ST_INPKTS, ST_OUTBYTES, ST_OUTPKTS, type StatsTable } from './stats.ts';

/** The estimation period the shifts below assume. */
export const EST_PERIOD_MS = 2000;

/** Rates as ipvsadm --rate shows them: per second, rounded as ip_vs_read_estimator does. */
export interface Rates {
  cps: number;
  inpps: number;
  outpps: number;
  inbps: number;
  outbps: number;
}

// Arithmetic shift right on values that may be negative, like the kernel's signed 64-bit >>.
function sar(x: number, n: number): number {
  return Math.floor(x / 2 ** n);
}

/**
 * Estimators for the slots of a StatsTable. Averages are kept in the kernel's fixed point: pps and
 * cps scaled by 2^10, bps by 2^5; Δ over 2 s is Δ/2 per second, hence the shifts by 9 and 4.
 */
export class Estimator {
  private readonly last: Float64Array;
  private readonly avg: Float64Array;
  private readonly active: Uint8Array;

  constructor(private readonly stats: StatsTable) {
    this.last = new Float64Array(stats.slots * ST_FIELDS);
    this.avg = new Float64Array(stats.slots * ST_FIELDS);
    this.active = new Uint8Array(stats.slots);
  }

  /** Start estimating a slot from its current counters (ip_vs_start_estimator). */
  start(slot: number): void {
    this.active[slot] = 1;
    this.reset(slot);
  }

  stop(slot: number): void {
    this.active[slot] = 0;
  }

  /** Zero the rates and take the current counters as the last sample (ip_vs_zero_estimator). */
  reset(slot: number): void {
    const k = slot * ST_FIELDS;
    for (let f = 0; f < ST_FIELDS; f++) {
      this.last[k + f] = this.stats.raw(slot, f);
      this.avg[k + f] = 0;
    }
  }

  /** One estimation round over every active slot; call every EST_PERIOD_MS. */
  estimate(): void {
    for (let s = 0; s < this.active.length; s++) if (this.active[s]) this.estimateSlot(s);
  }

  /** One estimation round for one slot (ip_vs_chain_estimation's body). */
  estimateSlot(slot: number): void {
    const k = slot * ST_FIELDS;
    for (let f = 0; f < ST_FIELDS; f++) {
      const cur = this.stats.raw(slot, f);
      const delta = cur - this.last[k + f]!;
      this.last[k + f] = cur;
      const shift = f === ST_INBYTES || f === ST_OUTBYTES ? 4 : 9;
      const a = this.avg[k + f]!;
      this.avg[k + f] = a + sar(delta * 2 ** shift - a, 2);
    }
  }

  /** Raw fixed-point average of one field (for tests and exporters). */
  rawAvg(slot: number, field: number): number {
    return this.avg[slot * ST_FIELDS + field]!;
  }

  /** Per-second rates rounded as the kernel reads them out. */
  rates(slot: number): Rates {
    const k = slot * ST_FIELDS;
    const pps = (v: number) => sar(v + 0x1ff, 10);
    const bps = (v: number) => sar(v + 0xf, 5);
    return {
      cps: pps(this.avg[k + ST_CONNS]!),
      inpps: pps(this.avg[k + ST_INPKTS]!),
      outpps: pps(this.avg[k + ST_OUTPKTS]!),
      inbps: bps(this.avg[k + ST_INBYTES]!),
      outbps: bps(this.avg[k + ST_OUTBYTES]!),
    };
  }
}
