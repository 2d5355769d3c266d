// Hostile input: a SYN flood from random sources against a small connection table — capped, counted, flat memory, legit clients served; refusals exact when nothing can be early-dropped.
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

/** Runs the flood generator in the client namespace towards the VIP (see synflood-gen.ts); resolves with its tally. */
async function flood(d: DirectorLab, port: number, count: number, rate: number, seed: number, udpRepeat = 0): Promise<{ sent: number; refused: number; seconds: number }> {
  const r = await d.lab.exec('client', [process.execPath, '--import', 'tsx', `${ROOT}test/e2e/synflood-gen.ts`, '--if', 'eth0',
    '--dst-mac', await routerMac(d), '--dst', VIP, '--dport', String(port), '--net', FLOOD_NET,
    '--count', String(count), '--rate', String(rate), '--seed', String(seed),
    ...(udpRepeat ? ['--proto', 'udp', '--repeat', String(udpRepeat)] : [])], 120_000);
  assert.equal(r.code, 0, r.stderr);
  return JSON.parse(r.stdout.trim().split('\n').pop()!) as { sent: number; refused: number; seconds: number };
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
      const gen = flood(d, port, FLOOD, RATE, 7);
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
      assert.equal(g.sent, FLOOD, `the generator sent every SYN (${JSON.stringify(g)})`);

      const mid = await counters();
      const created = (await svcConns()) - connsBefore;
      const rssPeak = Math.max(...samples.map((s) => s.rss));
      const after = await d.client('http', port, 50);
      const end = await counters();
      const rssAfter = rssKb(pid);
      const lan = (c: CountersResult) => c.ports.find((p) => p.ifname === 'lan0')!;
      const ringDrops = lan(mid).rxDropped - lan(before).rxDropped;
      const figures = {
        cap: CAP, floodSent: g.sent, floodSeconds: +g.seconds.toFixed(2),
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

test('a table full of live flows: every new conn refused and counted exactly, an established connection goes on', { skip: !canUseNetns() && 'needs root', timeout: 240_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    const rs = d.lab.realServers;
    const { http, udp } = d.lab.state.ports;
    await d.restore([`-A -t ${VIP}:${http} -s rr`, ...rs.map((r) => `-a -t ${VIP}:${http} -r ${r.ip}:${http} -m`),
      `-A -u ${VIP}:${udp} -s rr`, ...rs.map((r) => `-a -u ${VIP}:${udp} -r ${r.ip}:${udp} -m`)].join('\n') + '\n');
    await d.lab.sh('router', `ip route add blackhole ${FLOOD_NET}`);
    const ctl = new ControlClient(d.lab.director.socket);
    try {
      const counters = () => ctl.request({ op: 'counters' }) as Promise<CountersResult>;
      // One established connection, held open.
      const ka = await d.keepAlive(http);
      const before = await counters();
      // UDP flows of two datagrams each fill the table: none of them may be early-dropped.
      const FLOWS = 1100;
      const fill = await flood(d, udp, FLOWS * 2, 4000, 11, 2);
      assert.equal(fill.sent, FLOWS * 2);
      const full = await counters();
      assert.equal(full.conns.count, CAP);
      const room = CAP - before.conns.count;
      // Then SYNs: with nothing to early-drop, each is refused.
      const SYNS = 5000;
      const syn = await flood(d, http, SYNS, 5000, 12);
      assert.equal(syn.sent, SYNS);
      const legit = await d.client('http', http, 1);
      const after = await counters();
      const lan = (c: CountersResult) => c.ports.find((p) => p.ifname === 'lan0')!;
      const ringDrops = lan(after).rxDropped - lan(before).rxDropped;
      const figures = {
        cap: CAP, udpFlows: FLOWS, synsSent: SYNS, ringDrops, count: after.conns.count,
        overflow: after.conns.overflow - before.conns.overflow, tableFullDrops: after.ipvs.table_full! - before.ipvs.table_full!,
        earlyDrop: after.conns.earlyDrop - before.conns.earlyDrop, legitNew: { ok: legit.ok, failed: legit.failed },
      };
      console.log(`# table-full figures: ${JSON.stringify(figures)}`);
      assert.equal(ringDrops, 0, 'every frame reached tsvsd');
      assert.equal(figures.count, CAP);
      assert.equal(figures.earlyDrop, 0, 'live flows and established conns are never early-dropped');
      // The flows beyond the room left (both their datagrams), every SYN, and the legitimate client's
      // SYN with its retransmissions: each refused once and counted once, in both counters.
      assert.equal(figures.overflow, figures.tableFullDrops);
      const expected = 2 * (FLOWS - room) + SYNS;
      assert.ok(figures.overflow >= expected + 1 && figures.overflow <= expected + 4, `overflow ${figures.overflow}, want ${expected} + the legitimate SYN (1..4 tries)`);
      assert.equal(legit.ok, 0, 'a new connection finds no room');
      // The established connection is untouched by the full table.
      const second = await ka.second();
      assert.ok(second.sameSocket, 'the established connection carried on');
    } finally {
      ctl.close();
    }
  }, 3, ['--conn-table-size', String(CAP)]);
});
