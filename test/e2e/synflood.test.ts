// Hostile input: a SYN flood from random sources against a small connection table — capped, counted, flat memory, legit clients served.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { canUseNetns } from '../../src/lab/netns.ts';
import { ControlClient } from '../../src/ctl/client.ts';
import type { CountersResult, ListResult } from '../../src/ctl/protocol.ts';
import { withDirectorLab, ROOT, VIP } from './director-harness.ts';
import type { DirectorLab } from './director-harness.ts';

const CAP = 1024; // the smallest --conn-table-size tsvsd takes
const FLOOD = 30_000;
const RATE = 5_000; // SYNs per second: 6 s of flood, well inside the 60 s SYN_RECV timeout
/** Flood sources: a part of 198.18.0.0/15 the lab does not use; the router blackholes replies to it. */
const FLOOD_NET = '198.18.128.0/17';

function rssKb(pid: number): number {
  const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

async function routerMac(d: DirectorLab): Promise<string> {
  const j = JSON.parse(await d.lab.sh('router', 'ip -j link show cli0')) as { address: string }[];
  return j[0]!.address;
}

test('SYN flood against --conn-table-size 1024: table capped, drops counted, RSS flat, legitimate HTTP served during and after', { skip: !canUseNetns() && 'needs root', timeout: 240_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    const rs = d.lab.realServers;
    const port = d.lab.state.ports.http;
    await d.restore([`-A -t ${VIP}:${port} -s rr`, ...rs.map((r) => `-a -t ${VIP}:${port} -r ${r.ip}:${port} -m`)].join('\n') + '\n');
    // The real servers' SYN-ACKs to the flood's sources go NAT'ed back through the director towards the
    // router, which drops them silently: nothing leaves the lab, no ICMP comes back.
    await d.lab.sh('router', `ip route add blackhole ${FLOOD_NET}`);
    const proc = d.lab.state.procs.find((p) => p.what === 'tsvsd');
    assert.ok(proc, 'tsvsd runs');
    const pid = proc.pid; // `ip netns exec` execs node in place: the same PID
    assert.match(readFileSync(`/proc/${pid}/cmdline`, 'utf8'), /tsvsd/);
    const ctl = new ControlClient(d.lab.director.socket);
    try {
      const counters = () => ctl.request({ op: 'counters' }) as Promise<CountersResult>;
      const svcConns = async () => ((await ctl.request({ op: 'list' })) as ListResult).services[0]!.stats.conns;

      const warm = await d.client('http', port, 20);
      assert.equal(warm.failed, 0, warm.errors.join('; '));
      const before = await counters();
      assert.equal(before.conns.capacity, CAP);
      const connsBefore = await svcConns();
      const rssBefore = rssKb(pid);

      // The flood and, next to it, a sampler and a legitimate client making requests in rounds.
      const gen = d.lab.exec('client', [process.execPath, '--import', 'tsx', `${ROOT}test/e2e/synflood-gen.ts`, '--if', 'eth0',
        '--dst-mac', await routerMac(d), '--dst', VIP, '--dport', String(port), '--net', FLOOD_NET,
        '--count', String(FLOOD), '--rate', String(RATE), '--seed', '7'], 120_000);
      let flooding = true;
      const samples: { count: number; rss: number }[] = [];
      const sampler = (async () => {
        while (flooding) {
          samples.push({ count: (await counters()).conns.count, rss: rssKb(pid) });
          await new Promise((r) => setTimeout(r, 200));
        }
      })();
      let during = { ok: 0, failed: 0, rounds: 0, errors: [] as string[] };
      const legit = (async () => {
        while (flooding) {
          const r = await d.client('http', port, 10);
          during.ok += r.ok;
          during.failed += r.failed;
          during.rounds++;
          during.errors.push(...r.errors);
        }
      })();
      const g = await gen;
      flooding = false;
      await Promise.all([sampler, legit]);
      assert.equal(g.code, 0, g.stderr);
      const flood = JSON.parse(g.stdout.trim().split('\n').pop()!) as { sent: number; refused: number; seconds: number };
      assert.equal(flood.sent, FLOOD, `the generator sent every SYN (${JSON.stringify(flood)})`);

      const mid = await counters();
      const created = (await svcConns()) - connsBefore;
      const rssPeak = Math.max(...samples.map((s) => s.rss));
      const after = await d.client('http', port, 50);
      const end = await counters();
      const rssAfter = rssKb(pid);
      const lan = (c: CountersResult) => c.ports.find((p) => p.ifname === 'lan0')!;
      const ringDrops = lan(mid).rxDropped - lan(before).rxDropped;
      const figures = {
        cap: CAP, floodSent: flood.sent, floodSeconds: +flood.seconds.toFixed(2),
        peakConns: Math.max(...samples.map((s) => s.count)), connsAfterFlood: mid.conns.count,
        connsCreated: created, earlyDrop: mid.conns.earlyDrop - before.conns.earlyDrop,
        overflow: mid.conns.overflow - before.conns.overflow, tableFullDrops: mid.ipvs.table_full! - before.ipvs.table_full!,
        ringDrops, rssKb: { before: rssBefore, peak: rssPeak, after: rssAfter },
        legit: { duringOk: during.ok, duringFailed: during.failed, rounds: during.rounds, afterOk: after.ok, afterFailed: after.failed },
      };
      console.log(`# synflood figures: ${JSON.stringify(figures)}`);

      // Capped: never above the capacity, and full while the flood's half-open conns live (60 s).
      assert.ok(samples.length > 5, 'sampled during the flood');
      for (const s of samples) assert.ok(s.count <= CAP, `conn count ${s.count} above the cap`);
      assert.equal(mid.conns.count, CAP);
      // Every SYN ipvs saw either made a conn or was refused: refusals are the overflow counter (and
      // the table_full drop reason), and the conns made beyond the cap were early-dropped.
      assert.equal(figures.overflow, figures.tableFullDrops);
      const seen = created + figures.overflow;
      assert.ok(seen >= FLOOD - ringDrops && seen <= FLOOD + during.ok + during.failed * 2 + 10,
        `conns made + refused (${seen}) match the SYNs sent (${FLOOD}, ${ringDrops} lost in the ring)`);
      // The flood's conns cannot expire within the test (SYN_RECV 60 s); only the legitimate client's can.
      const freed = figures.earlyDrop + (mid.conns.count - before.conns.count);
      assert.ok(freed <= created && freed >= created - (during.ok + during.failed * 2 + 30),
        `early drops (${figures.earlyDrop}) account for the conns made beyond the cap`);
      assert.ok(figures.earlyDrop >= FLOOD - CAP - ringDrops, 'the flood beyond the cap was early-dropped');
      // Legitimate clients: answered during the flood, all answered after it (the table is still full).
      assert.ok(during.ok > 0, `no legitimate request answered during the flood: ${during.errors.slice(0, 3).join('; ')}`);
      assert.equal(after.failed, 0, after.errors.join('; '));
      assert.equal(end.conns.count, CAP, 'still full after the flood, still serving');
      // Memory: the table is preallocated; nothing a flood does may grow tsvsd.
      assert.ok(rssPeak - rssBefore < 32 * 1024 && rssAfter - rssBefore < 32 * 1024, `RSS grew: ${JSON.stringify(figures.rssKb)} kB`);
    } finally {
      ctl.close();
    }
  }, 3, ['--conn-table-size', String(CAP)]);
});
