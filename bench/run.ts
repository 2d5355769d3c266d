// `npm run bench`: tsvs against the kernel, nftables DNAT and HAProxy on the namespace lab, plus the micro-benchmarks.
//
// Usage (root): node --import tsx bench/run.ts [--runs N] [--seconds S] [--only LIST] [--no-micro] [--no-sweep]
//   --only: comma-separated bed names (kernel, nftables, haproxy, tsvs-nat, tsvs-dr, tsvs-tun, or "tsvs")
//           and/or figures (udp, tcp, http, latency, micro); e.g. --only tsvs-nat,nftables,udp
// Writes bench/results/latest.json, latest.md and latest-ratios.svg. See docs/benchmarks.md.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { canUseNetns } from '../src/lab/netns.ts';
import { listNamespaces } from '../src/lab/topology.ts';
import { BED_LABELS, BED_NAMES, DIRECTOR_CPU, GEN_CPU, ROOT, bedUp, sinkDown, sinkUp, type Bed, type BedName } from './suite/beds.ts';
import { httpRun, tcpRun, udpRun, type Sample } from './suite/loads.ts';
import { cpuBusy, cpuSample, runCmd, sleep, spread } from './suite/measure.ts';
import { killMicro, runMicro, type MicroResult } from './suite/micro.ts';
import { evaluateTargets, markdown, ratioSvg, type BedResult, type LatencyMetric, type Metric, type Results } from './suite/report.ts';

const { values } = parseArgs({
  options: {
    runs: { type: 'string', default: '3' },
    seconds: { type: 'string', default: '5' },
    only: { type: 'string' },
    'no-micro': { type: 'boolean', default: false },
    'no-sweep': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (values.help) {
  process.stdout.write(readFileSync(new URL(import.meta.url), 'utf8').split('\n').slice(2, 7).map((l) => l.replace(/^\/\/ ?/, '')).join('\n') + '\n');
  process.exit(0);
}
const RUNS = Number(values.runs);
const SECONDS = Number(values.seconds);
if (!Number.isInteger(RUNS) || RUNS < 1 || RUNS > 20) throw new Error('--runs must be 1..20');
if (!(SECONDS >= 1 && SECONDS <= 60)) throw new Error('--seconds must be 1..60');

const FIGURES = ['udp', 'tcp', 'http', 'latency', 'micro'] as const;
type Figure = (typeof FIGURES)[number];
const only = values.only ? values.only.split(',').map((s) => s.trim()).filter(Boolean) : null;
for (const t of only ?? []) {
  if (t !== 'tsvs' && !(BED_NAMES as readonly string[]).includes(t) && !(FIGURES as readonly string[]).includes(t)) {
    throw new Error(`--only: unknown ${t} (beds: ${BED_NAMES.join(', ')}, tsvs; figures: ${FIGURES.join(', ')})`);
  }
}
const bedFilter = only?.filter((t) => !(FIGURES as readonly string[]).includes(t)) ?? [];
const figFilter = (only?.filter((t) => (FIGURES as readonly string[]).includes(t)) ?? []) as Figure[];
const beds: BedName[] = BED_NAMES.filter((b) => bedFilter.length === 0 || bedFilter.includes(b) || (bedFilter.includes('tsvs') && b.startsWith('tsvs-')));
const wantFig = (f: Figure) => figFilter.length === 0 || figFilter.includes(f);
const wantBeds = figFilter.length === 0 || figFilter.some((f) => f !== 'micro');
const wantMicro = !values['no-micro'] && (figFilter.length === 0 ? bedFilter.length === 0 : figFilter.includes('micro'));

const t0 = Date.now();
const log = (s: string) => {
  const e = Math.round((Date.now() - t0) / 1000);
  console.log(`[${String(Math.floor(e / 60)).padStart(2, '0')}:${String(e % 60).padStart(2, '0')}] ${s}`);
};

let currentBed: Bed | null = null;
let interrupted = false;
function onSignal(): void {
  if (interrupted) return;
  interrupted = true;
  console.error('\ninterrupted: tearing down');
  killMicro();
  const bed = currentBed;
  // The lab's own handler (labUp installs one) also tears it down and exits; this covers the rest.
  void (bed ? bed.lab.down() : Promise.resolve()).finally(() => process.exit(130));
}
process.on('SIGINT', onSignal);
process.on('SIGTERM', onSignal);

async function ensureTools(): Promise<void> {
  const need: Record<string, string> = { wrk: 'wrk', iperf3: 'iperf3', haproxy: 'haproxy', nft: 'nftables', nginx: 'nginx-light', taskset: 'util-linux' };
  const missing: string[] = [];
  for (const [cmd, pkg] of Object.entries(need)) if ((await runCmd('sh', ['-c', `command -v ${cmd}`], 5000)).code !== 0) missing.push(pkg);
  if (!missing.length) return;
  log(`installing ${missing.join(' ')} (apt-get)`);
  const r = await runCmd('sh', ['-c', `apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq ${missing.join(' ')}`], 600_000);
  if (r.code !== 0) throw new Error(`apt-get install ${missing.join(' ')} failed: ${r.stderr.trim().slice(-400)}`);
}

function toMetric(unit: string, samples: Sample[]): Metric {
  const s = spread(samples.map((x) => x.value))!;
  const procs = samples.map((x) => x.cpu.directorProc).filter((v): v is number => v !== null);
  return {
    unit,
    median: s.median,
    min: s.min,
    max: s.max,
    runs: s.runs,
    cpu0: spread(samples.map((x) => x.cpu.busy[GEN_CPU] ?? 0))!,
    cpu1: spread(samples.map((x) => x.cpu.busy[DIRECTOR_CPU] ?? 0))!,
    directorProc: procs.length ? spread(procs) : null,
    extras: samples.map((x) => x.extra ?? {}),
  };
}

const fmt = (x: Sample, unit: string) =>
  `${unit === 'Gbps' ? x.value.toFixed(2) : Math.round(x.value).toLocaleString('en-US')} ${unit}  (CPU0 ${Math.round((x.cpu.busy[GEN_CPU] ?? 0) * 100)}%, CPU1 ${Math.round((x.cpu.busy[DIRECTOR_CPU] ?? 0) * 100)}%${x.cpu.directorProc !== null ? `, director proc ${x.cpu.directorProc.toFixed(2)}` : ''})`;

/** Runs `fn` RUNS times (plus nothing else), logging each run. */
async function repeat(bed: Bed, what: string, unit: string, fn: () => Promise<Sample>, runs = RUNS): Promise<Sample[]> {
  const out: Sample[] = [];
  for (let i = 0; i < runs; i++) {
    if (interrupted) throw new Error('interrupted');
    const s = await fn();
    const extra = s.extra && Object.keys(s.extra).length ? `  ${Object.entries(s.extra).map(([k, v]) => `${k}=${v}`).join(' ')}` : '';
    log(`  ${bed.name} ${what} ${i + 1}/${runs}: ${fmt(s, unit)}${extra}`);
    out.push(s);
    await sleep(300);
  }
  return out;
}

/**
 * Other work on this 2-core machine (someone's tests) would be counted against whoever runs now: wait,
 * within a bound, until both CPUs are nearly idle, and record what was found.
 */
async function waitQuiet(what: string): Promise<{ cpu0: number; cpu1: number; waitedSec: number; loadavg: string }> {
  const start = Date.now();
  let busy: number[] = [];
  for (;;) {
    const a = cpuSample();
    await sleep(1000);
    busy = cpuBusy(a, cpuSample());
    if (Math.max(...busy) < QUIET_BUSY || Date.now() - start > QUIET_WAIT_MS || interrupted) break;
    if (Date.now() - start < 1500) log(`${what}: the machine is busy (CPU0 ${Math.round(busy[0]! * 100)}%, CPU1 ${Math.round(busy[1]! * 100)}%) with other work; waiting up to ${QUIET_WAIT_MS / 1000} s`);
  }
  const loadavg = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  if (Math.max(...busy) >= QUIET_BUSY) log(`${what}: still busy (CPU0 ${Math.round(busy[0]! * 100)}%, CPU1 ${Math.round(busy[1]! * 100)}%, load ${loadavg}): figures will be low`);
  return { cpu0: busy[0] ?? 0, cpu1: busy[1] ?? 0, waitedSec: Math.round((Date.now() - start) / 1000), loadavg };
}
const QUIET_BUSY = 0.15;
const QUIET_WAIT_MS = 20_000;

async function benchBed(name: BedName): Promise<BedResult> {
  const res: BedResult = { name, label: BED_LABELS[name], errors: [] };
  res.background = await waitQuiet(name);
  log(`${name}: building the lab (${BED_LABELS[name]})`);
  let bed: Bed;
  try {
    bed = await bedUp(name, log);
  } catch (e) {
    // A build can fail on a loaded machine (a program slow to start): one more try.
    if (interrupted) throw e;
    log(`${name}: build failed (${(e as Error).message.split('\n')[0]!.slice(0, 200)}); trying once more`);
    bed = await bedUp(name, log);
  }
  currentBed = bed;
  const step = async (key: string, fn: () => Promise<void>) => {
    if (interrupted) return;
    try {
      await fn();
    } catch (e) {
      if (interrupted) return;
      const msg = (e as Error).message.split('\n')[0]!.slice(0, 300);
      res.errors.push(`${key}: ${msg}`);
      log(`  ${name} ${key} FAILED: ${msg}`);
    }
  };
  try {
    if (bed.udp && wantFig('udp')) {
      await sinkUp(bed);
      try {
        await step('udp', async () => {
          res.udp = toMetric('pps', await repeat(bed, 'UDP unlimited', 'pps', () => udpRun(bed, SECONDS)));
        });
        if (name === 'tsvs-nat' && !values['no-sweep']) {
          await step('udpSweep', async () => {
            res.udpSweep = [];
            // Paced at fractions of what the generator offered unlimited: a director that collapses
            // under overload delivers more at a lower offered rate than at the unlimited one.
            const offered = spread((res.udp?.extras ?? []).map((x) => Number(x.offeredPps ?? 0)))?.median ?? 0;
            if (!offered) throw new Error('no unlimited UDP figure to pace from');
            for (const rate of [0.25, 0.5, 0.75].map((f) => Math.round((offered * f) / 1000) * 1000)) {
              const s = await udpRun(bed, Math.max(2, Math.round(SECONDS * 0.6)), rate);
              log(`  ${name} UDP paced @${rate / 1000}k: ${fmt(s, 'pps')}`);
              res.udpSweep.push({ offeredRate: rate, offeredPps: Number(s.extra?.offeredPps ?? 0), deliveredPps: s.value, cpu1: s.cpu.busy[DIRECTOR_CPU] ?? 0 });
            }
          });
        }
      } finally {
        await sinkDown(bed);
      }
    }
    if (wantFig('tcp')) {
      await step('tcp1', async () => {
        res.tcp1 = toMetric('Gbps', await repeat(bed, 'TCP 1 stream', 'Gbps', () => tcpRun(bed, SECONDS, 1)));
      });
      await step('tcp2', async () => {
        res.tcp2 = toMetric('Gbps', await repeat(bed, 'TCP 2 streams', 'Gbps', () => tcpRun(bed, SECONDS, 2)));
      });
    }
    if (wantFig('http') || wantFig('latency')) {
      await step('httpKeepAlive', async () => {
        res.httpKeepAlive = toMetric('req/s', await repeat(bed, 'HTTP keep-alive', 'req/s', () => httpRun(bed, SECONDS), wantFig('http') ? RUNS : 1));
      });
    }
    if (wantFig('http')) {
      await step('httpClose', async () => {
        res.httpClose = toMetric('req/s', await repeat(bed, 'HTTP new conn', 'req/s', () => httpRun(bed, SECONDS, { close: true })));
      });
    }
    if (wantFig('latency') && res.httpKeepAlive) {
      await step('latency', async () => {
        res.latency = await latency(bed, res.httpKeepAlive!.median / 2);
      });
    }
  } finally {
    currentBed = null;
    await bed.lab.down();
    log(`${name}: lab down`);
  }
  return res;
}

/**
 * Latency at half load: wrk connections that each wait DELAY ms between a response and the next request
 * (wrk's delay() hook), so the offered rate is about connections / (DELAY + latency). One short run
 * calibrates the number of connections to land near `targetRps`; the runs then report p50/p99.
 */
async function latency(bed: Bed, targetRps: number): Promise<LatencyMetric> {
  const delayMs = 2;
  let conns = Math.max(1, Math.round(targetRps * (delayMs / 1000) * 1.1));
  const cal = await httpRun(bed, Math.min(2, SECONDS), { connections: conns, delayMs });
  if (cal.value > 0) conns = Math.max(1, Math.min(1000, Math.round((conns * targetRps) / cal.value)));
  log(`  ${bed.name} half load: aiming at ${Math.round(targetRps)} req/s with ${conns} connections × ${delayMs} ms think time`);
  const samples: (Sample & { wrk: { p50Us: number; p99Us: number } })[] = [];
  for (let i = 0; i < RUNS; i++) {
    if (interrupted) throw new Error('interrupted');
    const s = await httpRun(bed, SECONDS, { connections: conns, delayMs });
    log(`  ${bed.name} half-load latency ${i + 1}/${RUNS}: p50 ${s.wrk.p50Us} µs, p99 ${s.wrk.p99Us} µs at ${fmt(s, 'req/s')}`);
    samples.push(s);
    await sleep(300);
  }
  return {
    ...toMetric('req/s', samples),
    p50Us: spread(samples.map((s) => s.wrk.p50Us))!,
    p99Us: spread(samples.map((s) => s.wrk.p99Us))!,
    targetRps: Math.round(targetRps),
    connections: conns,
    delayMs,
  };
}

async function machine(): Promise<Results['machine']> {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  const model = /model name\s*:\s*(.*)/.exec(cpuinfo)?.[1]?.trim() ?? 'unknown';
  const cpus = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  const mem = Number(/MemTotal:\s*(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0);
  return { cpuModel: model, cpus, memGiB: Math.round(mem / 1024 / 1024), uname: (await runCmd('uname', ['-srvm'], 5000)).stdout.trim(), node: process.version };
}

async function main(): Promise<void> {
  if (!canUseNetns()) {
    console.error('npm run bench needs root (network namespaces, AF_PACKET, apt-get)');
    process.exit(1);
  }
  const date = new Date().toISOString();
  log(`tsvs bench: ${RUNS} run(s) × ${SECONDS} s; beds: ${wantBeds ? beds.join(', ') : 'none'}; micro: ${wantMicro ? 'yes' : 'no'}`);
  await ensureTools();
  const bedResults: BedResult[] = [];
  if (wantBeds) {
    for (const b of beds) {
      if (interrupted) break;
      try {
        bedResults.push(await benchBed(b));
      } catch (e) {
        if (interrupted) break;
        const msg = (e as Error).message.split('\n')[0]!.slice(0, 300);
        log(`${b}: FAILED: ${msg}`);
        bedResults.push({ name: b, label: BED_LABELS[b], errors: [`bed: ${msg}`] });
      }
    }
  }
  const micro: MicroResult[] = [];
  if (wantMicro) {
    const bg = await waitQuiet('micro-benchmarks');
    for (const m of ['conntable', 'sched', 'packet', 'io'] as const) {
      if (interrupted) break;
      log(`micro: bench/${m}.ts`);
      const r = await runMicro(m, SECONDS);
      r.background = bg;
      log(`micro: ${m} ${r.ok ? `done in ${r.seconds} s` : `FAILED: ${r.error}`}`);
      micro.push(r);
    }
  }
  if (interrupted) return;
  const results: Results = {
    date,
    machine: await machine(),
    options: { runs: RUNS, seconds: SECONDS, only, micro: wantMicro },
    durationSec: Math.round((Date.now() - t0) / 1000),
    cpuSplit: `generators and servers on CPU${GEN_CPU}; director on CPU${DIRECTOR_CPU} (RPS on its interfaces, tsvsd/HAProxy pinned); default offloads`,
    beds: bedResults,
    micro,
    targets: evaluateTargets(bedResults, micro),
  };
  const dir = `${ROOT}bench/results`;
  mkdirSync(dir, { recursive: true });
  writeFileSync(`${dir}/latest.json`, JSON.stringify(results, null, 2) + '\n');
  const md = markdown(results);
  writeFileSync(`${dir}/latest.md`, md);
  writeFileSync(`${dir}/latest-ratios.svg`, ratioSvg(results));
  console.log('\n' + md);
  log('written: bench/results/latest.json, latest.md, latest-ratios.svg');
  const left = (await listNamespaces()).filter((n) => n.startsWith(`tsvs-${process.pid}-`));
  if (left.length) console.error(`warning: namespaces left behind: ${left.join(', ')}`);
}

await main();
