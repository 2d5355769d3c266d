// Measurement helpers of the benchmark suite: per-CPU busy share, a process's CPU time, medians.
import { readFileSync } from 'node:fs';
import { spawn } from 'node:child_process';

/** Per-CPU idle seconds (idle + iowait) and the wall clock, from /proc/stat and hrtime. */
export interface CpuSample {
  wall: number;
  idle: number[];
  /** Per CPU: softirq seconds (tick-sampled, indicative only on a NO_HZ guest). */
  softirq: number[];
}

const USER_HZ = 100;

/** Reads /proc/stat now. */
export function cpuSample(): CpuSample {
  const idle: number[] = [];
  const softirq: number[] = [];
  for (const l of readFileSync('/proc/stat', 'utf8').split('\n')) {
    if (!/^cpu\d/.test(l)) continue;
    const f = l.trim().split(/\s+/).slice(1).map(Number);
    idle.push((f[3]! + f[4]!) / USER_HZ);
    softirq.push(f[6]! / USER_HZ);
  }
  return { wall: Number(process.hrtime.bigint()) / 1e9, idle, softirq };
}

/**
 * Busy share of each CPU between two samples: 1 − idle/wall. The kernel's idle time is exact on a NO_HZ
 * guest, while its tick-sampled user/system/softirq counters miss short wake-ups (perf-baseline.md), so
 * the wall clock, not the sum of the counters, is the denominator.
 */
export function cpuBusy(a: CpuSample, b: CpuSample): number[] {
  const wall = b.wall - a.wall;
  return a.idle.map((v, i) => round3(Math.min(1, Math.max(0, 1 - (b.idle[i]! - v) / wall))));
}

/** utime + stime of a process (all its threads), in seconds; null once it is gone. */
export function procCpuSeconds(pid: number): number | null {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name may hold spaces: fields count from after its closing parenthesis.
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / USER_HZ;
  } catch {
    return null;
  }
}

export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}

/** Median, min and max of a list of run results. */
export interface Spread {
  median: number;
  min: number;
  max: number;
  runs: number[];
}

export function spread(xs: number[]): Spread | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
  return { median: m, min: s[0]!, max: s[s.length - 1]!, runs: xs };
}

export interface CmdResult {
  code: number | null;
  stdout: string;
  stderr: string;
  timedOut: boolean;
}

/**
 * Runs a command to completion with a hard time limit (SIGKILL at the limit; the result says so).
 * Output is collected up to a few MB.
 */
export function runCmd(cmd: string, args: string[], timeoutMs: number, input?: string): Promise<CmdResult> {
  return new Promise((resolve) => {
    const c = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    let timedOut = false;
    c.stdout.on('data', (b: Buffer) => {
      if (out.length < 8 << 20) out += b.toString();
    });
    c.stderr.on('data', (b: Buffer) => {
      if (err.length < 1 << 20) err += b.toString();
    });
    const t = setTimeout(() => {
      timedOut = true;
      c.kill('SIGKILL');
    }, timeoutMs);
    c.on('error', (e) => {
      clearTimeout(t);
      resolve({ code: null, stdout: out, stderr: err + String(e), timedOut });
    });
    c.on('close', (code) => {
      clearTimeout(t);
      resolve({ code, stdout: out, stderr: err, timedOut });
    });
    c.stdin.on('error', () => {});
    c.stdin.end(input ?? '');
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
