// Scheduler benchmark: decisions per second for every registered scheduler at 10, 100 and 1,000 dests, with counters still and changing.

import { TrackedDest } from '../src/ipvs/sched/loadindex.ts';
import { getScheduler, schedulerNames } from '../src/ipvs/sched/registry.ts';
import { DEST_F, type Dest, type Fwd, type SchedPacket, type Service } from '../src/ipvs/types.ts';

const SIZES = [10, 100, 1000];
const RUN_MS = Number(process.env.SCHED_BENCH_MS ?? 300);
const POOL = 4096; // distinct packets cycled through (client and destination addresses, ports)
const LIVE = 256; // binding mode: conns open at any time

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
    // TrackedDest, as the director makes them (src/ipvs/service.ts): counter writes reach the index.
    const d: Dest = new TrackedDest({
      id: i + 1,
      addr: (0xc6120200 + i) >>> 0,
      port: 80,
      fwd: 3 as Fwd,
      weight: w,
      flags: DEST_F.AVAILABLE,
      // ovf needs headroom (active <= weight) or it returns null for everyone.
      activeConns: name === 'ovf' ? 0 : r() % 50,
      inactConns: r() % 200,
      svc,
    });
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
  /** "still": counters never change; "binding": each decision also binds a conn and unbinds an older one. */
  mode: 'still' | 'binding';
  decisionsPerSec: number;
  nsPerDecision: number;
  nullShare: number;
}

function measure(name: string, n: number, pkts: SchedPacket[], binding: boolean): Row {
  const svc = service(name, n);
  const sched = svc.sched;
  let nulls = 0;
  // Binding mode: each decision binds an active conn to the chosen dest, and the conn bound
  // LIVE decisions earlier unbinds: LIVE conns stay open and every decision pays for two counter
  // updates, as a real conn's bind and a later unbind would.
  const live: (Dest | null)[] = new Array<Dest | null>(LIVE).fill(null);
  let k = 0;
  const step = (p: SchedPacket): void => {
    const d = sched.schedule(svc, p);
    if (d === null) nulls++;
    if (!binding) return;
    const old = live[k];
    if (old != null) old.activeConns--;
    if (d !== null) d.activeConns++;
    live[k] = d;
    k = (k + 1) & (LIVE - 1);
  };
  // Warm-up: lets the JIT settle and the lblc/lblcr caches fill (steady state: cache hits).
  for (let i = 0; i < 50_000; i++) step(pkts[i & (POOL - 1)]!);
  nulls = 0;
  let done = 0;
  const t0 = process.hrtime.bigint();
  const limit = BigInt(RUN_MS) * 1_000_000n;
  let elapsed = 0n;
  while (elapsed < limit) {
    for (let i = 0; i < 10_000; i++) step(pkts[(done + i) & (POOL - 1)]!);
    done += 10_000;
    elapsed = process.hrtime.bigint() - t0;
  }
  const ns = Number(elapsed) / done;
  return {
    scheduler: name,
    dests: n,
    mode: binding ? 'binding' : 'still',
    decisionsPerSec: Math.round(1e9 / ns),
    nsPerDecision: Math.round(ns * 10) / 10,
    nullShare: nulls / done,
  };
}

const pkts = packets();
const rows: Row[] = [];
for (const binding of [false, true]) for (const name of schedulerNames()) for (const n of SIZES) rows.push(measure(name, n, pkts, binding));

console.log(JSON.stringify({ node: process.version, runMs: RUN_MS, results: rows }, null, 2));
for (const mode of ['still', 'binding'] as const) {
  console.log(`\n${mode === 'still' ? 'decision only (counters still)' : `decision + one conn bound and one unbound, ${LIVE} conns open (counter updates included)`}`);
  const head = ['scheduler', ...SIZES.map((n) => `${n} dests ns`), ...SIZES.map((n) => `${n} dests M/s`)];
  console.log(head.join('\t'));
  for (const name of schedulerNames()) {
    const mine = rows.filter((r) => r.scheduler === name && r.mode === mode);
    console.log([name, ...mine.map((r) => r.nsPerDecision.toFixed(1)), ...mine.map((r) => (r.decisionsPerSec / 1e6).toFixed(2))].join('\t'));
  }
}
