// Runs the micro-benchmarks (bench/conntable.ts, sched.ts, packet.ts, io.ts) as child processes and collects their JSON.
import { existsSync, readFileSync, statSync } from 'node:fs';
import { spawn, type ChildProcess } from 'node:child_process';
import { ROOT, DIRECTOR_CPU } from './beds.ts';

export interface MicroResult {
  bench: string;
  seconds: number;
  ok: boolean;
  error?: string;
  result?: unknown;
  /** The machine's state just before it started (see run.ts waitQuiet). */
  background?: { cpu0: number; cpu1: number; waitedSec: number; loadavg: string };
}

let current: ChildProcess | null = null;

/** Kills the micro-benchmark running now, if any (SIGINT path). */
export function killMicro(): void {
  if (current && current.exitCode === null) current.kill('SIGKILL');
}

/** The first pretty-printed JSON object in a program's output (a line "{" up to the next line "}"). */
export function firstJson(text: string): unknown {
  const lines = text.split('\n');
  const a = lines.indexOf('{');
  if (a < 0) throw new Error('no JSON object in the output');
  const b = lines.indexOf('}', a);
  if (b < 0) throw new Error('unterminated JSON object in the output');
  return JSON.parse(lines.slice(a, b + 1).join('\n'));
}

function runChild(args: string[], timeoutMs: number, pin: boolean, env: Record<string, string> = {}): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve) => {
    const cmd = [...(pin ? ['taskset', '-c', String(DIRECTOR_CPU)] : []), process.execPath, '--import', 'tsx', ...args];
    const c = spawn(cmd[0]!, cmd.slice(1), { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    current = c;
    let out = '';
    let err = '';
    c.stdout.on('data', (b: Buffer) => (out += b.toString()));
    c.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const t = setTimeout(() => c.kill('SIGKILL'), timeoutMs);
    c.on('close', (code) => {
      clearTimeout(t);
      current = null;
      resolve({ code, out, err });
    });
  });
}

/**
 * Runs one micro-benchmark; the CPU-only ones pinned to the director's core. io.ts writes its own result file (it builds
 * namespaces and prints a table); the others print a JSON object on stdout.
 */
export async function runMicro(bench: 'conntable' | 'sched' | 'packet' | 'io', seconds: number): Promise<MicroResult> {
  const file = `${ROOT}bench/${bench}.ts`;
  if (!existsSync(file)) return { bench, seconds: 0, ok: false, error: `bench/${bench}.ts is not there` };
  const t0 = Date.now();
  // Shortened to fit the suite's 15 minutes: io.ts's quick set (its port types only, 2-3 s runs), the
  // scheduler bench at 150 ms per case, the packet bench at 1 s per case.
  const args =
    bench === 'io' ? [file, '--quick', '--seconds', String(Math.max(2, Math.min(seconds, 3)))] : bench === 'packet' ? [file, '1'] : [file];
  const ioFile = `${ROOT}bench/results/io-latest.json`;
  const ioBefore = existsSync(ioFile) ? statSync(ioFile).mtimeMs : 0;
  const r = await runChild(args, bench === 'io' ? 400_000 : 180_000, bench !== 'io', bench === 'sched' ? { SCHED_BENCH_MS: '150' } : {});
  const took = Math.round((Date.now() - t0) / 100) / 10;
  if (r.code !== 0) return { bench, seconds: took, ok: false, error: `exit ${r.code}: ${(r.err || r.out).trim().split('\n').slice(-3).join(' | ').slice(0, 400)}` };
  try {
    if (bench === 'io') {
      if (!existsSync(ioFile) || statSync(ioFile).mtimeMs === ioBefore) throw new Error('bench/io.ts wrote no bench/results/io-latest.json');
      return { bench, seconds: took, ok: true, result: JSON.parse(readFileSync(ioFile, 'utf8')) };
    }
    return { bench, seconds: took, ok: true, result: firstJson(r.out) };
  } catch (e) {
    return { bench, seconds: took, ok: false, error: (e as Error).message };
  }
}
