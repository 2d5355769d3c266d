// Shared e2e harness: namespaces A and B joined through F, where the L2 forwarder owns both F-side ends.
//
// Topology (one set per call, names tsvs-<pid>-<tag><n>-{a,b,f}):
//   A: va 198.18.0.1/24 ──veth── F: fa   [src/cli/l2fwd.ts --io KIND]   F: fb ──veth── B: vb 198.18.0.2/24
// F's veths carry no IP address (IPv6 off), so F's kernel stays silent and only the forwarder moves frames.
//
// API (stable; port authors use it for their e2e tests):
//   withL2fwdLab(opts, fn)        builds the lab, starts the forwarder, runs fn(lab), always tears down
//   lab.ping(from, count)         real ping A->B or B->A; returns {sent, received}
//   lab.tcpTransfer(from, bytes)  Node TCP client in `from` sends `bytes` random bytes to a server on the
//                                 other side; returns {bytes, sentSha, recvSha, recvBytes}
//   lab.csumErrors(role)          TcpInCsumErrors (nstat -az) in namespace role
//   lab.fwdStats()                SIGUSR1 -> the forwarder's stats JSON
//   lab.stopForwarder()           SIGTERM -> final stats JSON
// Options: io (port kind), burst, txOff (ethtool -K fa/fb tx off: checksum completion forced on the
// forwarder's egress), prepareF (hook to build kind-specific devices in F, returning the names the
// forwarder opens instead of fa/fb, e.g. macvtaps on fa/fb), extraArgs (more l2fwd CLI flags).
import { type ChildProcess } from 'node:child_process';
import { Netns, waitFor, withNetns } from './netns.ts';
import type { L2fwdStats } from '../io/l2fwd.ts';
import type { PortKind } from '../io/port.ts';

import { ROOT, moduleCommand } from '../root.ts';

export { ROOT };
export const ADDR = { a: '198.18.0.1', b: '198.18.0.2' } as const;
export type Side = 'a' | 'b';

export interface L2fwdLabOptions {
  io: PortKind;
  /** Namespace tag (1-8 lowercase letters/digits). */
  tag?: string;
  burst?: number;
  /** Force checksum completion (and software segmentation) on the forwarder's egress veths. */
  txOff?: boolean;
  /** Builds kind-specific devices inside F; returns the two interface names the forwarder opens. */
  prepareF?: (n: Netns) => Promise<{ a: string; b: string }>;
  extraArgs?: string[];
  /** Pin the forwarder to this CPU (taskset), for benchmarks. */
  cpu?: number;
}

export interface TransferResult {
  bytes: number;
  sentSha: string;
  recvSha: string;
  recvBytes: number;
}

export interface L2fwdLab {
  readonly n: Netns;
  /** Interfaces the forwarder owns (in F). */
  readonly fwdIfs: { a: string; b: string };
  /** The forwarder's "ready" line. */
  readonly ready: Record<string, unknown>;
  readonly forwarder: ChildProcess;
  ping(from: Side, count?: number): Promise<{ sent: number; received: number; output: string }>;
  tcpTransfer(from: Side, bytes: number, timeoutMs?: number): Promise<TransferResult>;
  csumErrors(role: Side): Promise<number>;
  fwdStats(): Promise<L2fwdStats>;
  stopForwarder(): Promise<L2fwdStats | null>;
  /** Everything the forwarder wrote to stderr so far (for failure messages). */
  fwdStderr(): string;
}

/** Reads JSON lines from a child's stdout and hands each parsed object to waiting consumers. */
class JsonLines {
  private buf = '';
  private readonly seen: Record<string, unknown>[] = [];
  private waiters: { pred: (o: Record<string, unknown>) => boolean; resolve: (o: Record<string, unknown>) => void }[] = [];
  constructor(private readonly child: ChildProcess) {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf('\n')) >= 0) {
        const line = this.buf.slice(0, i);
        this.buf = this.buf.slice(i + 1);
        let o: Record<string, unknown>;
        try {
          o = JSON.parse(line) as Record<string, unknown>;
        } catch {
          continue;
        }
        this.seen.push(o);
        this.waiters = this.waiters.filter((w) => (w.pred(o) ? (w.resolve(o), false) : true));
      }
    });
  }
  next(pred: (o: Record<string, unknown>) => boolean, timeoutMs: number, what: string, from = this.seen.length): Promise<Record<string, unknown>> {
    const hit = this.seen.slice(from).find(pred);
    if (hit) return Promise.resolve(hit);
    return new Promise((resolve, reject) => {
      const c = this.child;
      const t = setTimeout(() => reject(new Error(`timed out waiting for forwarder ${what} (exit code ${c.exitCode}, signal ${c.signalCode})`)), timeoutMs);
      this.waiters.push({ pred, resolve: (o) => (clearTimeout(t), resolve(o)) });
    });
  }
  get count(): number {
    return this.seen.length;
  }
}

// The TCP endpoints: small Node programs run with `node -e` inside a namespace. The server hashes what
// it receives; the client sends random bytes, hashing them as it goes. Both print one JSON line.
const SERVER_JS = `
const net = require('net'), crypto = require('crypto');
const [addr, port] = process.argv.slice(1);
const srv = net.createServer((s) => {
  const h = crypto.createHash('sha256'); let n = 0;
  s.on('data', (d) => { h.update(d); n += d.length; });
  s.on('end', () => { console.log(JSON.stringify({ bytes: n, sha: h.digest('hex') })); s.end(); srv.close(); });
  s.on('error', (e) => { console.error(String(e)); process.exit(1); });
});
srv.listen(Number(port), addr, () => console.log(JSON.stringify({ listening: true })));
`;
const CLIENT_JS = `
const net = require('net'), crypto = require('crypto');
const [addr, port, total] = process.argv.slice(1);
const h = crypto.createHash('sha256'); let left = Number(total);
const s = net.connect(Number(port), addr, () => {
  const pump = () => {
    while (left > 0) {
      const chunk = crypto.randomBytes(Math.min(left, 65536));
      left -= chunk.length; h.update(chunk);
      if (!s.write(chunk)) return s.once('drain', pump);
    }
    s.end();
  };
  pump();
});
s.on('data', () => {});
s.on('close', () => console.log(JSON.stringify({ bytes: Number(total), sha: h.digest('hex') })));
s.on('error', (e) => { console.error(String(e)); process.exit(1); });
`;

let portSeq = 0;

/** Collects a child's whole stdout and waits for it to exit, killing it after `timeoutMs`. */
function collect(child: ChildProcess, timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr?.setEncoding('utf8').on('data', (d: string) => (err += d));
  return new Promise((resolve) => {
    const t = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(t);
      resolve({ code, out, err });
    });
  });
}

/** Builds the A–F–B lab with the forwarder running in F, runs `fn`, and always tears everything down. */
export async function withL2fwdLab<T>(opts: L2fwdLabOptions, fn: (lab: L2fwdLab) => Promise<T>): Promise<T> {
  return withNetns(opts.tag ?? 'l2f', async (n) => {
    await n.add('a');
    await n.add('b');
    await n.add('f');
    await n.veth('a', 'va', 'f', 'fa');
    await n.veth('b', 'vb', 'f', 'fb');
    await n.ip('a', 'addr', 'add', `${ADDR.a}/24`, 'dev', 'va');
    await n.ip('b', 'addr', 'add', `${ADDR.b}/24`, 'dev', 'vb');
    if (opts.txOff) {
      for (const ifn of ['fa', 'fb']) await n.sh('f', `ethtool -K ${ifn} tx off >/dev/null`);
    }
    const fwdIfs = opts.prepareF ? await opts.prepareF(n) : { a: 'fa', b: 'fb' };
    const args = ['--io', opts.io, '--a', fwdIfs.a, '--b', fwdIfs.b, '--burst', String(opts.burst ?? 64), '--json', ...(opts.extraArgs ?? [])];
    const node = [...moduleCommand(import.meta.url, '../cli/l2fwd'), ...args];
    const cmd = opts.cpu === undefined ? node : ['taskset', '-c', String(opts.cpu), ...node];
    const forwarder = n.spawn('f', cmd, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    forwarder.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const lines = new JsonLines(forwarder);
    const exited = new Promise<never>((_, reject) =>
      forwarder.once('exit', (code) => reject(new Error(`forwarder exited (${code}): ${stderr.trim()}`))),
    );
    exited.catch(() => {});
    const ready = await Promise.race([lines.next((o) => o.event === 'ready' || o.event === 'error', 20_000, 'ready'), exited]);
    if (ready.event === 'error') throw new Error(`forwarder failed to open its ports: ${ready.code}: ${ready.message}`);

    let stopped: L2fwdStats | null = null;
    const lab: L2fwdLab = {
      n,
      fwdIfs,
      ready,
      forwarder,
      fwdStderr: () => stderr,
      async ping(from, count = 4) {
        const to = from === 'a' ? ADDR.b : ADDR.a;
        const r = await n.exec(from, ['ping', '-c', String(count), '-i', '0.2', '-W', '2', to], 20_000);
        const m = /(\d+) packets transmitted, (\d+) received/.exec(r.stdout);
        return { sent: m ? Number(m[1]) : 0, received: m ? Number(m[2]) : 0, output: r.stdout + r.stderr };
      },
      async tcpTransfer(from, bytes, timeoutMs = 60_000) {
        const to: Side = from === 'a' ? 'b' : 'a';
        const port = String(5001 + (portSeq++ % 1000));
        const server = n.spawn(to, [process.execPath, '-e', SERVER_JS, ADDR[to], port]);
        const serverDone = collect(server, timeoutMs);
        await waitFor('TCP server listening', async () => (await n.exec(to, ['ss', '-Hltn', `sport = :${port}`])).stdout.includes(port), 10_000);
        const client = n.spawn(from, [process.execPath, '-e', CLIENT_JS, ADDR[to], port, String(bytes)]);
        const [c, s] = await Promise.all([collect(client, timeoutMs), serverDone]);
        if (c.code !== 0) throw new Error(`TCP client failed (${c.code}): ${c.err.trim()}`);
        if (s.code !== 0) throw new Error(`TCP server failed (${s.code}): ${s.err.trim()}`);
        const sent = JSON.parse(c.out.trim().split('\n').pop()!) as { bytes: number; sha: string };
        const recv = JSON.parse(s.out.trim().split('\n').pop()!) as { bytes: number; sha: string };
        return { bytes: sent.bytes, sentSha: sent.sha, recvSha: recv.sha, recvBytes: recv.bytes };
      },
      async csumErrors(role) {
        const out = await n.sh(role, 'nstat -az TcpInCsumErrors');
        const m = /TcpInCsumErrors\s+(\d+)/.exec(out);
        if (!m) throw new Error(`no TcpInCsumErrors in nstat output: ${out}`);
        return Number(m[1]);
      },
      async fwdStats() {
        const from = lines.count;
        forwarder.kill('SIGUSR1');
        const o = await lines.next((x) => x.event === 'stats', 10_000, 'stats', from);
        return o.stats as L2fwdStats;
      },
      async stopForwarder() {
        if (stopped || forwarder.exitCode !== null) return stopped;
        const from = lines.count;
        forwarder.kill('SIGTERM');
        const o = await lines.next((x) => x.event === 'exit', 10_000, 'exit', from);
        stopped = o.stats as L2fwdStats;
        return stopped;
      },
    };
    return fn(lab);
  });
}
