// The loads the suite puts through a bed: UDP flood, iperf3 TCP, wrk HTTP; each run returns its figure and the CPU it cost.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { cpuBusy, cpuSample, procCpuSeconds, round3, runCmd, sleep } from './measure.ts';
import { sinkCount, GEN_CPU, HTTP_PORT, IPERF_PORT, ROOT, type Bed } from './beds.ts';

/** CPU spent during one run: busy share per CPU, and the director process's CPU seconds per second. */
export interface RunCpu {
  busy: number[];
  /** tsvsd's or HAProxy's own CPU time over the run, in cores (null: the kernel does the work). */
  directorProc: number | null;
}

export interface Sample {
  value: number;
  cpu: RunCpu;
  extra?: Record<string, number | string>;
}

async function measured<T>(bed: Bed, fn: () => Promise<T>): Promise<{ out: T; cpu: RunCpu }> {
  const p0 = bed.directorPid ? procCpuSeconds(bed.directorPid) : null;
  const c0 = cpuSample();
  const out = await fn();
  const c1 = cpuSample();
  const p1 = bed.directorPid ? procCpuSeconds(bed.directorPid) : null;
  const wall = c1.wall - c0.wall;
  return { out, cpu: { busy: cpuBusy(c0, c1), directorProc: p0 !== null && p1 !== null ? round3((p1 - p0) / wall) : null } };
}

/** Runs a command inside a role's namespace pinned to CPU0, with a hard time limit. */
function inNs(bed: Bed, role: string, cmd: string[], timeoutMs: number) {
  return runCmd('ip', ['netns', 'exec', bed.lab.ns(role), 'taskset', '-c', String(GEN_CPU), ...cmd], timeoutMs);
}

/**
 * UDP flood of 60-byte frames (18-byte payload, 256 flows) from the router's LAN port to the director,
 * for `seconds`, at `rate` pps (0: as fast as the generator goes). The value is delivered packets/s,
 * counted by the real servers' ingress sinks.
 */
export async function udpRun(bed: Bed, seconds: number, rate = 0): Promise<Sample> {
  const before = await sinkCount(bed);
  const { out: r, cpu } = await measured(bed, () =>
    inNs(
      bed,
      bed.gen.role,
      [process.execPath, '--import', 'tsx', `${ROOT}bench/udpgen.ts`, '--if', bed.gen.ifname, '--dst-mac', bed.gen.dstMac, '--src', bed.gen.src, '--dst', bed.target, '--seconds', String(seconds), '--rate', String(rate)],
      (seconds + 30) * 1000,
    ),
  );
  await sleep(300); // frames still queued reach the sinks
  const after = await sinkCount(bed);
  if (r.code !== 0) throw new Error(`udpgen failed (${r.code}${r.timedOut ? ', timed out' : ''}): ${r.stderr.trim().slice(0, 300)}`);
  const g = JSON.parse(r.stdout.trim().split('\n').pop()!) as { sent: number; seconds: number };
  return { value: Math.round((after - before) / g.seconds), cpu, extra: { offeredPps: Math.round(g.sent / g.seconds) } };
}

/** iperf3 from the client through the director to rs1 (the port-5201 service has one real server). */
export async function tcpRun(bed: Bed, seconds: number, streams: number): Promise<Sample> {
  const { out: r, cpu } = await measured(bed, () =>
    inNs(bed, 'client', ['iperf3', '-c', bed.target, '-p', String(IPERF_PORT), '-t', String(seconds), '-P', String(streams), '-J'], (seconds + 20) * 1000),
  );
  let j: { end?: { sum_received?: { bits_per_second: number }; sum_sent?: { retransmits?: number } }; error?: string };
  try {
    j = JSON.parse(r.stdout) as typeof j;
  } catch {
    throw new Error(`iperf3 failed (${r.code}${r.timedOut ? ', timed out' : ''}): ${(r.stdout + r.stderr).trim().slice(0, 300)}`);
  }
  if (j.error || !j.end?.sum_received) throw new Error(`iperf3: ${j.error ?? 'no result'}`);
  return { value: round3(j.end.sum_received.bits_per_second / 1e9), cpu, extra: { retransmits: j.end.sum_sent?.retransmits ?? 0 } };
}

export interface WrkResult {
  requests: number;
  durationUs: number;
  errors: { connect: number; read: number; write: number; status: number; timeout: number };
  p50Us: number;
  p90Us: number;
  p99Us: number;
  meanUs: number;
}

/** A wrk script: optional Connection: close, optional think time per request, a JSON summary at the end. */
function wrkScript(dir: string, close: boolean, delayMs: number): string {
  const f = join(dir, `wrk-${close ? 'close' : 'ka'}-${delayMs}.lua`);
  writeFileSync(
    f,
    [
      close ? 'wrk.headers["Connection"] = "close"' : '',
      delayMs > 0 ? `function delay() return ${delayMs} end` : '',
      'function done(s, lat, req)',
      '  local e = s.errors',
      '  io.write(string.format(\'{"requests":%d,"durationUs":%d,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},"p50Us":%d,"p90Us":%d,"p99Us":%d,"meanUs":%.1f}\\n\',',
      '    s.requests, s.duration, e.connect, e.read, e.write, e.status, e.timeout, lat:percentile(50), lat:percentile(90), lat:percentile(99), lat.mean))',
      'end',
      '',
    ].join('\n'),
  );
  return f;
}

/** wrk -t1 against the bed's HTTP service; value = requests/s. */
export async function httpRun(bed: Bed, seconds: number, opts: { close?: boolean; connections?: number; delayMs?: number } = {}): Promise<Sample & { wrk: WrkResult }> {
  const script = wrkScript(bed.lab.state.dir, !!opts.close, opts.delayMs ?? 0);
  const c = opts.connections ?? 64;
  const { out: r, cpu } = await measured(bed, () =>
    inNs(bed, 'client', ['wrk', '-t1', `-c${c}`, `-d${seconds}s`, '--timeout', '2s', '-s', script, `http://${bed.target}:${HTTP_PORT}/`], (seconds + 20) * 1000),
  );
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"requests"'));
  if (!line) throw new Error(`wrk failed (${r.code}${r.timedOut ? ', timed out' : ''}): ${(r.stdout + r.stderr).trim().slice(0, 300)}`);
  const w = JSON.parse(line) as WrkResult;
  const errs = w.errors.connect + w.errors.read + w.errors.write + w.errors.status + w.errors.timeout;
  return { value: Math.round(w.requests / (w.durationUs / 1e6)), cpu, wrk: w, extra: { errors: errs, p50Us: w.p50Us, p99Us: w.p99Us } };
}
