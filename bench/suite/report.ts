// The suite's results: their shape, the DESIGN.md §6 targets with pass/fail, the markdown tables and the SVG ratio chart.
import type { BedName } from './beds.ts';
import type { MicroResult } from './micro.ts';
import type { Spread } from './measure.ts';

/** One figure over its runs, with the CPU each run cost. */
export interface Metric {
  unit: string;
  median: number;
  min: number;
  max: number;
  runs: number[];
  /** Busy share of CPU0 (generators, servers) and CPU1 (the director's core), over the runs. */
  cpu0: Spread;
  cpu1: Spread;
  /** tsvsd's or HAProxy's own CPU time per second of the run (cores); null for the kernel. */
  directorProc: Spread | null;
  /** Per run: other numbers the tool reported (offered rate, errors, retransmits, latency). */
  extras: Record<string, number | string>[];
}

export interface LatencyMetric extends Metric {
  p50Us: Spread;
  p99Us: Spread;
  /** Half of this bed's keep-alive median: the rate aimed at. */
  targetRps: number;
  connections: number;
  delayMs: number;
}

export interface SweepPoint {
  offeredRate: number;
  offeredPps: number;
  deliveredPps: number;
  cpu1: number;
}

/** The machine's state just before a bed or micro-benchmark started (other work running?). */
export interface Background {
  cpu0: number;
  cpu1: number;
  waitedSec: number;
  loadavg: string;
}

export interface BedResult {
  name: BedName;
  label: string;
  errors: string[];
  background?: Background;
  udp?: Metric;
  udpSweep?: SweepPoint[];
  tcp1?: Metric;
  tcp2?: Metric;
  httpKeepAlive?: Metric;
  httpClose?: Metric;
  latency?: LatencyMetric;
}

export interface TargetRow {
  target: string;
  config: string;
  value: number | null;
  base: number | null;
  ratio: number | null;
  need: string;
  pass: boolean | null;
  note?: string;
}

export interface Results {
  date: string;
  machine: { cpuModel: string; cpus: number; memGiB: number; uname: string; node: string };
  options: { runs: number; seconds: number; only: string[] | null; micro: boolean };
  durationSec: number;
  cpuSplit: string;
  beds: BedResult[];
  micro: MicroResult[];
  targets: TargetRow[];
}

type MetricKey = 'udp' | 'tcp1' | 'tcp2' | 'httpKeepAlive' | 'httpClose';

const METRIC_LABEL: Record<MetricKey, string> = {
  udp: 'UDP pps (60 B)',
  tcp1: 'TCP Gbps, 1 stream',
  tcp2: 'TCP Gbps, 2 streams',
  httpKeepAlive: 'HTTP req/s keep-alive',
  httpClose: 'HTTP req/s new conn',
};

const TSVS: BedName[] = ['tsvs-nat', 'tsvs-dr', 'tsvs-tun'];

/** Evaluates every DESIGN.md §6 target that this run measured (null pass: a side is missing). */
export function evaluateTargets(beds: BedResult[], micro: MicroResult[]): TargetRow[] {
  const by = new Map(beds.map((b) => [b.name, b]));
  const rows: TargetRow[] = [];
  const med = (b: BedName, k: MetricKey) => by.get(b)?.[k]?.median ?? null;
  const ratioRow = (target: string, t: BedName, base: BedName, k: MetricKey, need: number) => {
    if (!by.has(t)) return;
    const v = med(t, k);
    const bv = med(base, k);
    const ratio = v !== null && bv ? v / bv : null;
    rows.push({ target, config: t, value: v, base: bv, ratio: ratio === null ? null : round2(ratio), need: `≥ ${need}× ${base}`, pass: ratio === null ? null : ratio >= need });
  };
  for (const t of TSVS) {
    ratioRow('UDP small-packet forwarding', t, 'nftables', 'udp', 1.0);
    const sweep = by.get(t)?.udpSweep;
    const peak = by.get(t)?.udp?.median;
    if (sweep?.length && peak !== undefined) {
      const best = Math.max(...sweep.map((p) => p.deliveredPps));
      const ratio = best ? peak / best : null;
      rows.push({
        target: 'UDP: no collapse under overload',
        config: t,
        value: peak,
        base: best,
        ratio: ratio === null ? null : round2(ratio),
        need: 'unlimited load ≥ 0.8× best paced rate',
        pass: ratio === null ? null : ratio >= 0.8,
      });
    }
    ratioRow('TCP throughput, 1 stream', t, 'nftables', 'tcp1', 1.0);
    ratioRow('TCP throughput, 2 streams', t, 'nftables', 'tcp2', 1.0);
    ratioRow('HTTP keep-alive', t, 'nftables', 'httpKeepAlive', 0.9);
    ratioRow('HTTP keep-alive', t, 'haproxy', 'httpKeepAlive', 1.5);
    ratioRow('HTTP new connection per request', t, 'haproxy', 'httpClose', 1.5);
    const lt = by.get(t)?.latency?.p99Us.median ?? null;
    const ln = by.get('nftables')?.latency?.p99Us.median ?? null;
    if (by.has(t)) {
      const ratio = lt !== null && ln ? lt / ln : null;
      rows.push({ target: 'p99 latency at half load', config: t, value: lt, base: ln, ratio: ratio === null ? null : round2(ratio), need: '≤ 2× nftables', pass: ratio === null ? null : ratio <= 2 });
    }
  }
  const ct = micro.find((m) => m.bench === 'conntable' && m.ok)?.result as { results: { conns: number; lookupNs: number; bytesPerConn: number }[]; memoryLatencyNs?: number } | undefined;
  if (ct) {
    const big = ct.results.find((r) => r.conns === 1_000_000);
    const small = ct.results.find((r) => r.conns === 1_000);
    if (big) {
      const mb = (big.bytesPerConn * 1_000_000) / 2 ** 20;
      rows.push({ target: '1M conns within 128 MB', config: 'conn table', value: round2(mb), base: 128, ratio: round2(mb / 128), need: '≤ 128 MiB', pass: mb <= 128, note: `${big.bytesPerConn} B/conn` });
    }
    if (big && small) {
      const r = big.lookupNs / small.lookupNs;
      rows.push({ target: 'lookup flat 1k → 1M conns', config: 'conn table', value: big.lookupNs, base: small.lookupNs, ratio: round2(r), need: '1M ≤ 2× 1k (ns)', pass: r <= 2, ...(ct.memoryLatencyNs ? { note: `one dependent random memory read here: ${ct.memoryLatencyNs} ns` } : {}) });
    }
  }
  const sc = micro.find((m) => m.bench === 'sched' && m.ok)?.result as { results: { scheduler: string; dests: number; nsPerDecision: number }[] } | undefined;
  if (sc) {
    for (const name of ['rr', 'wrr', 'sh', 'dh', 'mh']) {
      const a = sc.results.find((r) => r.scheduler === name && r.dests === 10);
      const b = sc.results.find((r) => r.scheduler === name && r.dests === 1000);
      if (!a || !b) continue;
      const r = b.nsPerDecision / a.nsPerDecision;
      rows.push({ target: 'scheduler O(1), 10 → 1,000 dests', config: name, value: b.nsPerDecision, base: a.nsPerDecision, ratio: round2(r), need: '1,000 ≤ 2× 10 (ns)', pass: r <= 2 });
    }
    const at1k = sc.results.filter((r) => r.dests === 1000);
    if (at1k.length) {
      const worst = at1k.reduce((w, r) => (r.nsPerDecision > w.nsPerDecision ? r : w));
      rows.push({ target: 'every scheduler < 1 µs at 1,000 dests', config: `worst: ${worst.scheduler}`, value: worst.nsPerDecision, base: 1000, ratio: round2(worst.nsPerDecision / 1000), need: '< 1000 ns', pass: worst.nsPerDecision < 1000 });
    }
  }
  return rows;
}

function round2(x: number): number {
  return Math.round(x * 100) / 100;
}

function fmtNum(x: number, unit: string): string {
  if (unit === 'pps' || unit === 'req/s') return x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : x >= 1e3 ? `${(x / 1e3).toFixed(1)} k` : `${Math.round(x)}`;
  if (unit === 'Gbps') return x.toFixed(2);
  if (unit === 'us') return x >= 1000 ? `${(x / 1000).toFixed(2)} ms` : `${Math.round(x)} µs`;
  return String(x);
}

function cell(m: Metric | undefined, err?: boolean): string {
  if (!m) return err ? 'error' : '—';
  if (m.runs.length === 1) return fmtNum(m.median, m.unit);
  return `${fmtNum(m.median, m.unit)} (${fmtNum(m.min, m.unit)}–${fmtNum(m.max, m.unit)})`;
}

function cpuCell(m: Metric | undefined): string {
  if (!m) return '—';
  const p = (x: number) => `${Math.round(x * 100)}%`;
  return `${p(m.cpu0.median)} / ${p(m.cpu1.median)}${m.directorProc ? ` / ${m.directorProc.median.toFixed(2)}` : ''}`;
}

/** latest.md: figures, CPU, ratios and the targets with pass/fail. */
export function markdown(r: Results): string {
  const out: string[] = [];
  const m = r.machine;
  out.push(`# tsvs benchmark results`, '');
  out.push(`${r.date} · ${m.cpuModel}, ${m.cpus} CPUs, ${m.memGiB} GiB · ${m.uname} · Node ${m.node}`);
  out.push(`${r.options.runs} run(s) × ${r.options.seconds} s per figure, median (min–max) · ${r.cpuSplit} · whole suite ${Math.round(r.durationSec)} s`, '');
  out.push('## Figures', '');
  const keys: MetricKey[] = ['udp', 'tcp1', 'tcp2', 'httpKeepAlive', 'httpClose'];
  out.push(`| configuration | ${keys.map((k) => METRIC_LABEL[k]).join(' | ')} | p50 / p99 at half load |`);
  out.push(`|---|${keys.map(() => '---').join('|')}|---|`);
  for (const b of r.beds) {
    const lat = b.latency ? `${fmtNum(b.latency.p50Us.median, 'us')} / ${fmtNum(b.latency.p99Us.median, 'us')} @ ${fmtNum(b.latency.median, 'req/s')}` : '—';
    out.push(`| ${b.label} | ${keys.map((k) => cell(b[k], b.errors.some((e) => e.startsWith(k)))).join(' | ')} | ${lat} |`);
  }
  out.push('', '## CPU per figure (median busy CPU0 / CPU1 / director process in cores)', '');
  out.push('CPU0 runs the generators and servers, CPU1 the director (RPS of its interfaces, tsvsd or HAProxy pinned).', '');
  out.push(`| configuration | ${keys.map((k) => METRIC_LABEL[k]).join(' | ')} | half-load HTTP |`);
  out.push(`|---|${keys.map(() => '---').join('|')}|---|`);
  for (const b of r.beds) out.push(`| ${b.label} | ${keys.map((k) => cpuCell(b[k])).join(' | ')} | ${cpuCell(b.latency)} |`);
  const sweeps = r.beds.filter((b) => b.udpSweep?.length);
  if (sweeps.length) {
    out.push('', '## UDP offered-rate sweep (1 run each)', '');
    for (const b of sweeps) {
      out.push(`${b.label}: ` + b.udpSweep!.map((p) => `${p.offeredRate ? fmtNum(p.offeredRate, 'pps') : 'unlimited'} → ${fmtNum(p.deliveredPps, 'pps')} (CPU1 ${Math.round(p.cpu1 * 100)}%)`).join(' · '));
    }
  }
  out.push('', '## Ratios', '');
  out.push(`| figure | ${TSVS.map((t) => `${t}/nftables`).join(' | ')} | ${TSVS.map((t) => `${t}/HAProxy`).join(' | ')} |`);
  out.push(`|---|${TSVS.map(() => '---').join('|')}|${TSVS.map(() => '---').join('|')}|`);
  for (const k of keys) {
    const rat = (t: BedName, base: BedName) => {
      const a = r.beds.find((b) => b.name === t)?.[k]?.median;
      const c = r.beds.find((b) => b.name === base)?.[k]?.median;
      return a !== undefined && c ? (a / c).toFixed(2) : '—';
    };
    out.push(`| ${METRIC_LABEL[k]} | ${TSVS.map((t) => rat(t, 'nftables')).join(' | ')} | ${TSVS.map((t) => rat(t, 'haproxy')).join(' | ')} |`);
  }
  out.push('', '## Targets (DESIGN.md §6)', '');
  out.push('| target | config | tsvs | baseline | ratio | needs | result |');
  out.push('|---|---|---|---|---|---|---|');
  for (const t of r.targets) {
    const res = t.pass === null ? 'n/a' : t.pass ? '**pass**' : '**FAIL**';
    out.push(`| ${t.target} | ${t.config} | ${t.value ?? '—'} | ${t.base ?? '—'} | ${t.ratio ?? '—'} | ${t.need} | ${res}${t.note ? ` (${t.note})` : ''} |`);
  }
  const noisy = [...r.beds.map((b) => [b.name, b.background] as const), ...r.micro.map((x) => [`micro ${x.bench}`, x.background] as const)].filter(
    ([, bg]) => bg && Math.max(bg.cpu0, bg.cpu1) >= 0.15,
  );
  if (noisy.length) {
    out.push('', '## Warning: other work was running', '');
    out.push('These started while the machine was busy with something else; their figures are low and noisy:', '');
    for (const [n, bg] of noisy) out.push(`- ${n}: CPU0 ${Math.round(bg!.cpu0 * 100)}%, CPU1 ${Math.round(bg!.cpu1 * 100)}% busy beforehand, load average ${bg!.loadavg}`);
  }
  const errs = r.beds.flatMap((b) => b.errors.map((e) => `- ${b.name}: ${e}`));
  const merrs = r.micro.filter((x) => !x.ok).map((x) => `- micro ${x.bench}: ${x.error}`);
  if (errs.length || merrs.length) out.push('', '## Errors', '', ...errs, ...merrs);
  out.push('', '## Micro-benchmarks', '');
  for (const x of r.micro) out.push(`- ${x.bench}: ${x.ok ? `ok (${x.seconds} s), full output in latest.json` : `failed: ${x.error}`}`);
  out.push('');
  return out.join('\n');
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** A horizontal bar chart of the tsvs/nftables and tsvs/HAProxy ratios, with the 1.0 line and each target marked. */
export function ratioSvg(r: Results): string {
  const bars: { label: string; ratio: number; need: number; base: 'nftables' | 'haproxy' }[] = [];
  const keys: MetricKey[] = ['udp', 'tcp1', 'tcp2', 'httpKeepAlive', 'httpClose'];
  const need: Record<string, Partial<Record<MetricKey, number>>> = {
    nftables: { udp: 1, tcp1: 1, tcp2: 1, httpKeepAlive: 0.9 },
    haproxy: { httpKeepAlive: 1.5, httpClose: 1.5 },
  };
  for (const t of TSVS) {
    const tb = r.beds.find((b) => b.name === t);
    if (!tb) continue;
    for (const base of ['nftables', 'haproxy'] as const) {
      const bb = r.beds.find((b) => b.name === base);
      for (const k of keys) {
        const a = tb[k]?.median;
        const c = bb?.[k]?.median;
        if (a === undefined || !c) continue;
        bars.push({ label: `${t.slice(5).toUpperCase()} ${METRIC_LABEL[k]} / ${base === 'haproxy' ? 'HAProxy' : 'nft'}`, ratio: a / c, need: need[base]![k] ?? 0, base });
      }
    }
  }
  const rowH = 22;
  const left = 290;
  const width = 820;
  const plotW = width - left - 60;
  const maxR = Math.max(2, ...bars.map((b) => Math.min(b.ratio, 4)));
  const x = (v: number) => left + (Math.min(v, maxR) / maxR) * plotW;
  const top = 50;
  const height = top + bars.length * rowH + 40;
  const s: string[] = [];
  s.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`);
  s.push(`<rect width="100%" height="100%" fill="#fff"/>`);
  s.push(`<text x="10" y="20" font-size="15" font-weight="bold">tsvs / nftables DNAT and tsvs / HAProxy (medians, ${esc(r.date.slice(0, 10))})</text>`);
  s.push(`<text x="10" y="38" fill="#555">bars: ratio (higher is better); black line: 1.0; red tick: the DESIGN.md §6 target</text>`);
  for (let v = 0; v <= maxR + 1e-9; v += 0.5) {
    s.push(`<line x1="${x(v)}" y1="${top - 4}" x2="${x(v)}" y2="${top + bars.length * rowH}" stroke="${v === 1 ? '#000' : '#ddd'}" stroke-width="${v === 1 ? 1.5 : 1}"/>`);
    s.push(`<text x="${x(v)}" y="${top + bars.length * rowH + 16}" text-anchor="middle" fill="#555">${v.toFixed(1)}</text>`);
  }
  bars.forEach((b, i) => {
    const y = top + i * rowH;
    const ok = b.need === 0 || b.ratio >= b.need;
    s.push(`<text x="${left - 8}" y="${y + 15}" text-anchor="end">${esc(b.label)}</text>`);
    s.push(`<rect x="${left}" y="${y + 3}" width="${Math.max(1, x(b.ratio) - left)}" height="${rowH - 6}" fill="${b.base === 'nftables' ? (ok ? '#4a7ab5' : '#9db6d6') : ok ? '#d08a2e' : '#e8c493'}"/>`);
    s.push(`<text x="${x(b.ratio) + 4}" y="${y + 15}">${b.ratio.toFixed(2)}</text>`);
    if (b.need) s.push(`<line x1="${x(b.need)}" y1="${y + 1}" x2="${x(b.need)}" y2="${y + rowH - 1}" stroke="#c00" stroke-width="2"/>`);
  });
  if (bars.length === 0) s.push(`<text x="10" y="${top + 15}">no ratio measured in this run</text>`);
  s.push('</svg>');
  return s.join('\n') + '\n';
}
