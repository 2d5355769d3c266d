// Scheduler benchmark: decisions per second for every registered scheduler at 10, 100 and 1,000 dests.

import { getScheduler, schedulerNames } from '../src/ipvs/sched/registry.ts';
import { DEST_F, type Dest, type Fwd, type SchedPacket, type Service } from '../src/ipvs/types.ts';

const SIZES = [10, 100, 1000];
const RUN_MS = Number(process.env.SCHED_BENCH_MS ?? 300);
const POOL = 4096; // distinct packets cycled through (client and destination addresses, ports)

function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>>= 0);
  };
}

/** A service with n dests of mixed weights and loads, added as the kernel adds them (head first). */
function service(name: string, n: number): Service {
  const sched = getScheduler(name)!;
  const svc: Service = {
    proto: 6,
    addr: 0xc6120164,
    port: 80,
    fwmark: 0,
    sched,
    schedData: null,
    flags: 0,
    timeout: 0,
    netmask: 0xffffffff,
    dests: [],
  };
  sched.init?.(svc);
  const r = rng(n * 31 + name.length);
  for (let i = 0; i < n; i++) {
    const w = 1 + (r() % 10);
    const d: Dest = {
      id: i + 1,
      addr: (0xc6120200 + i) >>> 0,
      port: 80,
      fwd: 3 as Fwd,
      weight: w,
      lastWeight: w,
      uThreshold: 0,
      lThreshold: 0,
      flags: DEST_F.AVAILABLE,
      // ovf needs headroom (active <= weight) or it returns null for everyone.
      activeConns: name === 'ovf' ? 0 : r() % 50,
      inactConns: r() % 200,
      persistConns: 0,
      svc,
    };
    svc.dests.unshift(d);
    sched.addDest?.(svc, d);
  }
  return svc;
}

function packets(): SchedPacket[] {
  const r = rng(7);
  const out: SchedPacket[] = [];
  for (let i = 0; i < POOL; i++) {
    out.push({ proto: 6, saddr: r(), sport: 1024 + (r() % 60000), daddr: (0x0a000000 + (r() % 1024)) >>> 0, dport: 80 });
  }
  return out;
}

interface Row {
  scheduler: string;
  dests: number;
  decisionsPerSec: number;
  nsPerDecision: number;
  nullShare: number;
}

function measure(name: string, n: number, pkts: SchedPacket[]): Row {
  const svc = service(name, n);
  const sched = svc.sched;
  let nulls = 0;
  // Warm-up: lets the JIT settle and the lblc/lblcr caches fill (steady state: cache hits).
  for (let i = 0; i < 50_000; i++) sched.schedule(svc, pkts[i & (POOL - 1)]!);
  let done = 0;
  const t0 = process.hrtime.bigint();
  const limit = BigInt(RUN_MS) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < limit) {
    for (let i = 0; i < 10_000; i++) {
      if (sched.schedule(svc, pkts[(done + i) & (POOL - 1)]!) === null) nulls++;
    }
    done += 10_000;
    elapsed = process.hrtime.bigint() - t0;
  }
  const ns = Number(elapsed) / done;
  return { scheduler: name, dests: n, decisionsPerSec: Math.round(1e9 / ns), nsPerDecision: Math.round(ns * 10) / 10, nullShare: nulls / done };
}

const pkts = packets();
const rows: Row[] = [];
for (const name of schedulerNames()) for (const n of SIZES) rows.push(measure(name, n, pkts));

console.log(JSON.stringify({ node: process.version, runMs: RUN_MS, results: rows }, null, 2));
const head = ['scheduler', ...SIZES.map((n) => `${n} dests ns`), ...SIZES.map((n) => `${n} dests M/s`)];
console.log(head.join('\t'));
for (const name of schedulerNames()) {
  const mine = rows.filter((r) => r.scheduler === name);
  console.log([name, ...mine.map((r) => r.nsPerDecision.toFixed(1)), ...mine.map((r) => (r.decisionsPerSec / 1e6).toFixed(2))].join('\t'));
}
