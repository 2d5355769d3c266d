// Power-of-two-choices scheduler (ip_vs_twos.c): two weighted random picks, keep the less loaded per weight.

import { DEST_F, type Dest, type Scheduler, type Service } from '../types.ts';
import { IX, indexHooks, usableIndex, type LoadIndex } from './loadindex.ts';

const OVERLOAD = DEST_F.OVERLOAD;

/** Uniform integer in [0, bound), as the kernel's get_random_u32_below(). */
export type RandomBelow = (bound: number) => number;

const mathRandomBelow: RandomBelow = (bound) => Math.floor(Math.random() * bound);
let randomBelow: RandomBelow = mathRandomBelow;

/** Replaces twos' random source (tests); null restores Math.random. */
export function setTwosRandom(fn: RandomBelow | null): void {
  randomBelow = fn ?? mathRandomBelow;
}

/** The kernel's two list walks: used when the list holds plain Dest objects (the index answers the same otherwise). */
export function twosWalk(svc: Service): Dest | null {
  const dests = svc.dests;
  let total = 0;
  let choice1: Dest | null = null;
  for (let i = 0, n = dests.length; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & OVERLOAD) === 0 && d.weight > 0) {
      total += d.weight;
      choice1 = d;
    }
  }
  if (choice1 === null) return null;
  // +1 makes both draws range over [0, total] inclusive, as the kernel does.
  total += 1;
  let r1 = randomBelow(total);
  let r2 = randomBelow(total);
  let choice2: Dest | null = null;
  let w1 = -1;
  let w2 = -1;
  let oh1 = 0;
  let oh2 = 0;
  for (let i = 0, n = dests.length; i < n; i++) {
    const d = dests[i]!;
    if ((d.flags & OVERLOAD) !== 0) continue;
    const w = d.weight;
    if (w <= 0) continue;
    r1 -= w;
    r2 -= w;
    if (r1 <= 0 && w1 === -1) {
      choice1 = d;
      w1 = w;
      oh1 = d.activeConns * 256 + d.inactConns;
    }
    if (r2 <= 0 && w2 === -1) {
      choice2 = d;
      w2 = w;
      oh2 = d.activeConns * 256 + d.inactConns;
    }
    if (w1 !== -1 && w2 !== -1) break;
  }
  if (choice2 !== null && w2 * oh1 > w1 * oh2) return choice2;
  return choice1;
}

/**
 * The same decision from the index: the same two draws, each pick found by binary search on the
 * running sums of eligible weights (the walk stops where the sum first reaches the draw; a draw of 0
 * stops at the first eligible dest, as a draw of 1 does).
 */
function twosIndexed(ix: LoadIndex): Dest | null {
  const total = ix.total;
  if (total === 0) return null;
  const r1 = randomBelow(total + 1);
  const r2 = randomBelow(total + 1);
  // Draws lie in [0, total], so the running sum reaches both; the fallbacks below mirror the walk
  // for a random source that strays outside (choice1 stays the last eligible dest, weight -1).
  const p1 = r1 <= total ? ix.firstReaching(r1 > 1 ? r1 : 1) : -1;
  const p2 = r2 <= total ? ix.firstReaching(r2 > 1 ? r2 : 1) : -1;
  const w = ix.w;
  const oh = ix.oh;
  const w1 = p1 >= 0 ? w[p1]! : -1;
  const oh1 = p1 >= 0 ? oh[p1]! : 0;
  if (p2 >= 0 && w[p2]! * oh1 > w1 * oh[p2]!) return ix.list[p2]!;
  return ix.list[p1 >= 0 ? p1 : ix.firstReaching(total)]!;
}

export const twos: Scheduler = {
  name: 'twos',
  ...indexHooks(IX.TWOS),
  schedule(svc) {
    const ix = usableIndex(svc);
    return ix === null ? twosWalk(svc) : twosIndexed(ix);
  },
};
