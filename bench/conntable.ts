// Benchmark: conn table insert and lookup cost (ns/op) at 1k..1M conns, and bytes per conn; prints JSON.

import { ConnTable } from '../src/ipvs/conn.ts';

function run(n: number): { conns: number; insertNs: number; lookupNs: number; missNs: number; bytesPerConn: number } {
  const t = new ConnTable(n, { seed: 12345 });
  const caddr = (k: number) => (0xc6120000 + (k >>> 10)) >>> 0;
  const cport = (k: number) => 1024 + (k & 1023);
  let t0 = process.hrtime.bigint();
  for (let k = 0; k < n; k++) {
    const i = t.alloc(6, caddr(k), cport(k), 0xc6120164, 80, 0xc612020b, 80, 0, 0);
    t.hash(i, true);
  }
  const insertNs = Number(process.hrtime.bigint() - t0) / n;
  const rounds = Math.max(1, Math.floor(2_000_000 / n));
  let sink = 0;
  t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) {
    // A stride walk so successive lookups do not hit neighbouring slots.
    for (let j = 0, k = 0; j < n; j++, k = (k + 7919) % n) sink += t.lookupIn(6, caddr(k), cport(k), 0xc6120164, 80);
  }
  const lookupNs = Number(process.hrtime.bigint() - t0) / (n * rounds);
  t0 = process.hrtime.bigint();
  for (let r = 0; r < rounds; r++) for (let k = 0; k < n; k++) sink += t.lookupIn(6, caddr(k), cport(k), 0xc6120165, 80);
  const missNs = Number(process.hrtime.bigint() - t0) / (n * rounds);
  if (sink === 42) console.error('');
  return { conns: n, insertNs: +insertNs.toFixed(1), lookupNs: +lookupNs.toFixed(1), missNs: +missNs.toFixed(1), bytesPerConn: +t.bytesPerConn().toFixed(1) };
}

/**
 * The floor a big table's lookup stands on: one dependent random read from memory far larger than the
 * caches (a pointer chase around a random cycle over 128 MiB), in the same JavaScript.
 */
function memoryLatencyNs(): number {
  const n = 1 << 25;
  const next = new Int32Array(n);
  for (let i = 0; i < n; i++) next[i] = i;
  // Sattolo's shuffle: one cycle through every slot, so the chase never settles in a short loop.
  let x = 0x9e3779b9;
  for (let i = n - 1; i > 0; i--) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    const j = (x >>> 0) % i;
    const t = next[i]!;
    next[i] = next[j]!;
    next[j] = t;
  }
  const steps = 2_000_000;
  let p = 0;
  const t0 = process.hrtime.bigint();
  for (let k = 0; k < steps; k++) p = next[p]!;
  const ns = Number(process.hrtime.bigint() - t0) / steps;
  if (p === -1) console.error('');
  return +ns.toFixed(1);
}

run(100_000); // JIT warm-up, not reported
const results = [1_000, 10_000, 100_000, 1_000_000].map(run);
console.log(JSON.stringify({ bench: 'conntable', node: process.version, results, memoryLatencyNs: memoryLatencyNs() }, null, 2));
