// Shared e2e set-up: a lab (src/lab/topology.ts) with tsvsd running in its director namespace, plus
// helpers to drive tsvsadm and the lab client.
import { fileURLToPath } from 'node:url';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { labUp, LAB, type Lab, type LabMode } from '../../src/lab/topology.ts';
import { startDirector, labClient } from '../../src/lab/director.ts';
import { run, type ExecResult } from '../../src/lab/netns.ts';
import type { ClientRun } from '../../src/lab/client.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const VIP = LAB.vip;

export interface KeepAlive {
  /** The real server that answered the first request. */
  first: string;
  /** Makes the second request; resolves with its answer and whether the same TCP connection carried it. */
  second(): Promise<{ server: string; sameSocket: boolean }>;
  child: ChildProcess;
}

export interface DirectorLab {
  lab: Lab;
  /** Runs tsvsadm ARGS against this lab's tsvsd; returns its output and status. */
  adm(...args: string[]): Promise<ExecResult>;
  /** Like adm but throws unless it exits 0. */
  admOk(...args: string[]): Promise<string>;
  /** Feeds `text` to `tsvsadm -R` (one start-up for many commands); throws unless it exits 0. */
  restore(text: string): Promise<void>;
  /** Starts a keep-alive client that makes one request now and one more on the same connection when told. */
  keepAlive(port: number): Promise<KeepAlive>;
  /** Runs the lab client in the client namespace. */
  client(mode: 'http' | 'udp' | 'xfer', port: number, count: number, concurrency?: number): Promise<ClientRun>;
}

/** Builds a lab for `mode`, starts tsvsd in it, runs `fn`, and always tears everything down. */
export async function withDirectorLab(mode: LabMode, fn: (d: DirectorLab) => Promise<void>, servers = 3, tsvsdExtra: string[] = []): Promise<void> {
  const lab = await labUp({ mode, servers, name: `d${mode}` });
  try {
    await startDirector(lab, tsvsdExtra);
    const sock = lab.director.socket;
    const adm = (...args: string[]) => run(process.execPath, [`${ROOT}bin/tsvsadm.mjs`, '--socket', sock, ...args], 30_000);
    const admOk = async (...args: string[]) => {
      const r = await adm(...args);
      if (r.code !== 0) throw new Error(`tsvsadm ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
      return r.stdout;
    };
    const client = (m: 'http' | 'udp' | 'xfer', port: number, count: number, concurrency = 1): Promise<ClientRun> => labClient(lab, m, port, count, concurrency);
    const restore = (text: string) =>
      new Promise<void>((resolve, reject) => {
        const c = spawn(process.execPath, [`${ROOT}bin/tsvsadm.mjs`, '--socket', sock, '-R'], { stdio: ['pipe', 'pipe', 'pipe'] });
        let err = '';
        c.stderr.on('data', (b) => (err += b));
        const t = setTimeout(() => c.kill('SIGKILL'), 30_000);
        c.on('exit', (code) => {
          clearTimeout(t);
          if (code === 0) resolve();
          else reject(new Error(`tsvsadm -R failed (${code}): ${err}`));
        });
        c.stdin.end(text);
      });
    const children: ChildProcess[] = [];
    const keepAlive = async (port: number): Promise<KeepAlive> => {
      const child = spawn('ip', ['netns', 'exec', lab.ns('client'), process.execPath, '--import', 'tsx', `${ROOT}src/lab/client.ts`, '--mode', 'keepalive', '--vip', VIP, '--port', String(port)], {
        stdio: ['pipe', 'pipe', 'inherit'],
      });
      children.push(child);
      const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
      const next = async () => {
        const timeout = new Promise<never>((_, rej) => setTimeout(() => rej(new Error('keep-alive client did not answer')), 15_000));
        const r = await Promise.race([lines.next(), timeout]);
        if (r.done) throw new Error('keep-alive client exited');
        return JSON.parse(r.value) as { server: string; sameSocket: boolean };
      };
      const first = await next();
      return {
        first: first.server,
        child,
        second: async () => {
          child.stdin!.write('go\n');
          return next();
        },
      };
    };
    try {
      await fn({ lab, adm, admOk, client, restore, keepAlive });
    } finally {
      for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
    }
  } finally {
    await lab.down();
  }
}

/**
 * The real-server rows listed under the service `PROTO VIP:PORT` in a tsvsadm listing (-L -n, with or
 * without --stats), each split into fields: [address:port, ...columns].
 */
export function serviceRows(listing: string, proto: 'TCP' | 'UDP', svc: string): string[][] {
  const rows: string[][] = [];
  let inSvc = false;
  for (const line of listing.split('\n')) {
    if (/^(TCP|UDP)\s/.test(line)) inSvc = line.startsWith(`${proto}  ${svc} `);
    else if (inSvc && line.startsWith('  -> ') && !line.startsWith('  -> RemoteAddress')) rows.push(line.slice(5).trim().split(/\s+/));
  }
  return rows;
}

/** Weight of each real server (by address) of the TCP service VIP:port, from `tsvsadm -L -n`. */
export async function listedWeights(d: DirectorLab, port = 80): Promise<Record<string, number>> {
  const rows = serviceRows(await d.admOk('-L', '-n'), 'TCP', `${VIP}:${port}`);
  return Object.fromEntries(rows.map((f) => [f[0]!.split(':')[0]!, Number(f[2])]));
}
