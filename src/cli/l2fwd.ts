// `l2fwd`: owns two interfaces through ports and forwards every frame between them, untouched.
//
// Usage: node --import tsx src/cli/l2fwd.ts --io KIND --a IF --b IF [--burst N] [--ring-frames N] [--frame-size N]
//        [--no-promisc] [--tx-ring] [--json]
// Prints a "ready" line once both ports are open, stats on SIGUSR1 and at exit (SIGTERM/SIGINT).
// With --json every line is one JSON object: {"event":"ready"|"stats"|"exit"|"error", ...}; the e2e
// harness (src/lab/l2fwd-lab.ts) and bench/io.ts read those. Exit codes: 0 stopped, 2 bad usage/open error.
import { parseArgs } from 'node:util';
import { IoError } from '../io/errors.ts';
import { L2Forwarder, type L2fwdStats } from '../io/l2fwd.ts';
import { openPort } from '../io/open.ts';
import type { Port, PortKind } from '../io/port.ts';

const macStr = (m: Uint8Array): string => [...m].map((x) => x.toString(16).padStart(2, '0')).join(':');

function describe(s: L2fwdStats): string {
  const dir = (name: string, d: L2fwdStats['aToB']): string =>
    `${name}: ${d.frames} frames, ${d.bytes} bytes, ${d.gsoFrames} GSO, ${d.csumPartialFrames} partial-csum, ` +
    `${d.txDropped} tx-dropped, avg batch ${d.bursts ? (d.frames / d.bursts).toFixed(1) : '0'} (burst ${s.burst})`;
  return [dir('a->b', s.aToB), dir('b->a', s.bToA), `ports: a rxDropped ${s.a.rxDropped}, b rxDropped ${s.b.rxDropped}`].join('\n');
}

function main(): void {
  const { values } = parseArgs({
    options: {
      io: { type: 'string', default: 'afpacket' },
      a: { type: 'string' },
      b: { type: 'string' },
      burst: { type: 'string', default: '64' },
      'ring-frames': { type: 'string' },
      'frame-size': { type: 'string' },
      'no-promisc': { type: 'boolean', default: false },
      'tx-ring': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const json = values.json;
  const out = (event: string, body: Record<string, unknown>, text: string): void => {
    process.stdout.write(json ? JSON.stringify({ event, ...body }) + '\n' : text + '\n');
  };
  const fail = (code: string, message: string): never => {
    if (json) out('error', { code, message }, '');
    process.stderr.write(`l2fwd: ${code}: ${message}\n`);
    process.exit(2);
  };
  if (!values.a || !values.b) fail('EINVAL', 'usage: l2fwd --io KIND --a IF --b IF [--burst N] [--ring-frames N] [--frame-size N] [--no-promisc] [--json]');
  const burst = Number(values.burst);
  if (!Number.isInteger(burst) || burst < 1 || burst > 1024) fail('EINVAL', '--burst must be 1..1024');
  const ringFrames = values['ring-frames'] === undefined ? undefined : Number(values['ring-frames']);
  const frameSize = values['frame-size'] === undefined ? undefined : Number(values['frame-size']);
  const opts = { promisc: !values['no-promisc'], txRing: values['tx-ring'], ...(ringFrames ? { ringFrames } : {}), ...(frameSize ? { frameSize } : {}) };

  const ports: Port[] = [];
  try {
    ports.push(openPort(values.io as PortKind, values.a!, opts));
    ports.push(openPort(values.io as PortKind, values.b!, opts));
  } catch (e) {
    for (const p of ports) p.close();
    if (e instanceof IoError) fail(e.code, e.message);
    throw e;
  }
  const [a, b] = ports as [Port, Port];
  const fwd = new L2Forwarder(a, b, { burst });
  const info = (p: Port) => ({ ifname: p.ifname, kind: p.kind, mac: macStr(p.mac), mtu: p.mtu, maxFrame: p.maxFrame });
  process.on('SIGUSR1', () => {
    const s = fwd.stats();
    out('stats', { stats: s }, describe(s));
  });
  const finish = (): void => {
    void fwd.stop().then(() => {
      const s = fwd.stats();
      a.close();
      b.close();
      out('exit', { stats: s }, describe(s));
      process.exit(0);
    });
  };
  process.once('SIGTERM', finish);
  process.once('SIGINT', finish);
  // Only now say ready: a SIGUSR1 that arrived before its handler would start Node's debugger instead.
  out('ready', { pid: process.pid, burst, a: info(a), b: info(b) }, `l2fwd ${values.io}: ${a.ifname} <-> ${b.ifname}, burst ${burst} (pid ${process.pid})`);
  void fwd.run();
}

main();
