// Test fixtures for schedulers: plain Service/Dest objects and the kernel's add/delete/edit order of operations.

import { DEST_F, type Dest, type Fwd, type SchedPacket, type Service } from '../../../src/ipvs/types.ts';
import { getScheduler } from '../../../src/ipvs/sched/registry.ts';
import { TrackedDest } from '../../../src/ipvs/sched/loadindex.ts';

export const VIP = 0xc6120164; // 198.18.1.100
let nextId = 1;

export interface DestSpec {
  name: string;
  weight: number;
  active?: number;
  inact?: number;
  overloaded?: boolean;
  addr?: number;
  /** An IPv6 dest: its address as four host-order words. */
  addr6?: Uint32Array;
  port?: number;
}

export type NamedDest = Dest & { name: string };

/** A service bound to `sched` with no dests yet, as ip_vs_add_service leaves it. */
export function makeService(sched: string, flags = 0): Service {
  const s = getScheduler(sched);
  if (!s) throw new Error(`no scheduler ${sched}`);
  const svc: Service = {
    proto: 6,
    addr: VIP,
    port: 80,
    fwmark: 0,
    sched: s,
    schedData: null,
    flags,
    timeout: 0,
    netmask: 0xffffffff,
    dests: [],
  };
  s.init?.(svc);
  return svc;
}

/**
 * A dest as the director makes it: a TrackedDest, so the schedulers answer from their index and every
 * direct field write in a test reaches it (plain objects would take the list-walk path instead).
 */
export function makeDest(svc: Service, spec: DestSpec, index: number): NamedDest {
  const id = nextId++;
  const d = new TrackedDest({
    id,
    addr: spec.addr ?? (0xc6120100 + 11 + index) >>> 0, // 198.18.1.11+
    addr6: spec.addr6 ?? null,
    port: spec.port ?? 80,
    fwd: 3 as Fwd,
    weight: spec.weight,
    lastWeight: spec.weight,
    flags: DEST_F.AVAILABLE | (spec.overloaded ? DEST_F.OVERLOAD : 0),
    activeConns: spec.active ?? 0,
    inactConns: spec.inact ?? 0,
    svc,
  });
  return Object.assign(d, { name: spec.name });
}

/** Adds a dest as the kernel does: at the list head, then the scheduler's add_dest. */
export function addDest(svc: Service, d: Dest): void {
  svc.dests.unshift(d);
  svc.sched.addDest?.(svc, d);
}

/** Deletes a dest as the kernel does: unlink, clear AVAILABLE (it goes to the trash), then del_dest. */
export function delDest(svc: Service, d: Dest): void {
  const i = svc.dests.indexOf(d);
  if (i < 0) throw new Error('not a dest of this service');
  svc.dests.splice(i, 1);
  d.flags &= ~DEST_F.AVAILABLE;
  svc.sched.delDest?.(svc, d);
}

/** Edits a dest's weight as __ip_vs_update_dest does (last_weight keeps the last non-zero one). */
export function setWeight(svc: Service, d: Dest, w: number): void {
  if (w !== 0) d.lastWeight = w;
  d.weight = w;
  svc.sched.updDest?.(svc, d);
}

/**
 * A service whose list ends up in exactly the order given (first = list head): dests are added one by
 * one from the last, since each add goes to the head.
 */
export function build(sched: string, specs: DestSpec[], flags = 0): { svc: Service; d: Record<string, NamedDest> } {
  const svc = makeService(sched, flags);
  const d: Record<string, NamedDest> = {};
  const made = specs.map((s, i) => makeDest(svc, s, i));
  for (let i = made.length - 1; i >= 0; i--) addDest(svc, made[i]!);
  for (const m of made) d[m.name] = m;
  return { svc, d };
}

export function pkt(saddr = 0xc6120002, daddr = VIP, sport = 40000, dport = 80): SchedPacket {
  return { proto: 6, saddr: saddr >>> 0, sport, daddr: daddr >>> 0, dport };
}

/** Name of the chosen dest, or null. */
export function pick(svc: Service, p: SchedPacket = pkt()): string | null {
  const r = svc.sched.schedule(svc, p);
  return r === null ? null : (r as NamedDest).name;
}

/** Deterministic pseudo-random u32 stream (xorshift32) for address spreads. */
export function xorshift(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x;
  };
}
