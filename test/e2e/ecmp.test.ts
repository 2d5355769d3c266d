// Scale-out: three directors behind a router's ECMP, each announcing the VIP over BGP through BIRD; mh + sloppy_tcp keep flows alive when the set changes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { canUseNetns, waitFor } from '../../src/lab/netns.ts';
import { labUp, namespacePids, LAB, type Lab } from '../../src/lab/topology.ts';
import { addEcmpDirector, ecmpStatus, routerBuckets, routerNextHops, startEcmpDirector, startRouterBird, runLabFlows, SYNC_ID, type EcmpDirector } from '../../src/lab/ecmp.ts';
import { BUCKETS } from '../../src/lab/resilient-fib.ts';
import { requestOnce } from '../../src/ctl/client.ts';
import { ROOT } from '../../src/root.ts';
import type { FlowResult } from '../../src/lab/client.ts';

const haveBird = spawnSync('sh', ['-c', 'command -v bird && command -v birdc'], { encoding: 'utf8' }).status === 0;
const skip = !canUseNetns() ? 'needs root' : !haveBird ? 'needs BIRD 2 (apt-get install bird2; scripts/ensure-tools.sh installs it)' : false;

const FLOWS = 90;
/** More flows when a 4th director joins: the share that moves is a binomial draw, 180 keep it near its mean (45 ± 6). */
const FLOWS_JOIN = 180;
const CLIENTS = 8;
/** BFD 100 ms x 3: the configured detection time. */
const DETECT_MS = 300;

type FlowKey = string;
const key = (cip: string, cport: number): FlowKey => `${cip}:${cport}`;

/** Flow → the directors whose conn table holds it, and the real server it was given there. */
async function whereFlowsAre(directors: readonly EcmpDirector[], flows: ReadonlySet<FlowKey>): Promise<Map<FlowKey, { dirs: Set<string>; rs: Set<string> }>> {
  const out = new Map<FlowKey, { dirs: Set<string>; rs: Set<string> }>();
  for (const d of directors) {
    let conns;
    try {
      conns = (await requestOnce(d.socket, { op: 'connections' })).conns;
    } catch {
      continue; // a killed director
    }
    for (const c of conns) {
      if (c.vaddr !== LAB.vip) continue;
      const k = key(c.caddr, c.cport);
      // Only this run's flows: earlier runs' conns linger in the tables until they expire.
      if (!flows.has(k)) continue;
      const e = out.get(k) ?? { dirs: new Set(), rs: new Set() };
      e.dirs.add(d.role);
      e.rs.add(c.daddr);
      out.set(k, e);
    }
  }
  return out;
}

/** The lab client's flows; `during` runs once all are connected. */
function runFlows(lab: Lab, durationMs: number, during: (flows: ReadonlySet<FlowKey>) => Promise<void>, graceMs = 20_000, flows = FLOWS): Promise<FlowResult[]> {
  return runLabFlows(lab, { flows, durationMs, graceMs }, during);
}

const pidOf = (lab: Lab, d: EcmpDirector) => lab.state.procs.filter((p) => p.role === d.role && p.what === 'tsvsd').pop()!.pid;

function rsName(lab: Lab, ip: string): string {
  return lab.realServers.find((r) => r.ip === ip)?.role ?? ip;
}

/** Every flow completed with the right bytes on the real server it started on. */
function assertIntact(lab: Lab, flows: FlowResult[], before: Map<FlowKey, { dirs: Set<string>; rs: Set<string> }>, what: string): void {
  const bad = flows.filter((f) => !f.ok);
  assert.equal(bad.length, 0, `${what}: ${bad.length} flows broke: ${JSON.stringify(bad.slice(0, 3))}`);
  for (const f of flows) {
    const b = before.get(key(f.cip, f.cport));
    assert.ok(b, `${what}: flow ${f.cip}:${f.cport} was in no director's table`);
    assert.deepEqual([...b.rs].map((ip) => rsName(lab, ip)), [f.server], `${what}: flow ${f.cip}:${f.cport} ended on its real server`);
  }
}

/** Flows whose director changed between two snapshots (a new director's table holds them). */
function moved(before: Map<FlowKey, { dirs: Set<string> }>, after: Map<FlowKey, { dirs: Set<string>; rs: Set<string> }>): { moved: number; rsChanged: number } {
  let n = 0;
  let rsChanged = 0;
  for (const [k, a] of after) {
    const b = before.get(k);
    if (!b) continue;
    if ([...a.dirs].some((d) => !b.dirs.has(d))) n++;
    if (a.rs.size > 1) rsChanged++;
  }
  return { moved: n, rsChanged };
}

async function waitHops(lab: Lab, want: string[], ms: number): Promise<number> {
  const t0 = Date.now();
  try {
    await waitFor(`router next hops ${want.join(' ')}`, async () => (await routerNextHops(lab)).join(' ') === [...want].sort().join(' '), ms, 10);
  } catch (e) {
    // Say why: the router's sessions and the end of each director's log.
    const st = lab.state.ecmp!;
    const logs = lab.state.procs.filter((p) => p.what === 'tsvsd').map((p) => `${p.role}: ${readFileSync(p.log, 'utf8').trim().split('\n').slice(-4).join('\n  ')}`);
    throw new Error(`${(e as Error).message}; now ${(await routerNextHops(lab)).join(' ')}\n${birdc(lab, st.routerCtl!, 'show protocols')}\n${logs.join('\n')}`);
  }
  return Date.now() - t0;
}

function birdc(lab: Lab, ctl: string, cmd: string): string {
  return spawnSync('birdc', ['-s', ctl, ...cmd.split(' ')], { encoding: 'utf8' }).stdout;
}

test('ECMP: three directors announce the VIP over BGP; kill -9, a fourth director and a drain break no flow', { skip, timeout: 240_000 }, async () => {
  const lab = await labUp({ mode: 'dr', servers: 3, clients: CLIENTS, name: 'ecmp', ecmp: true });
  const figures: string[] = [];
  try {
    await startRouterBird(lab);
    const dirs: EcmpDirector[] = [];
    for (let k = 0; k < 3; k++) dirs.push(await addEcmpDirector(lab));
    const [d1, d2, d3] = dirs as [EcmpDirector, EcmpDirector, EcmpDirector];
    await waitHops(lab, [d1.lan, d2.lan, d3.lan], 15_000);

    // The routing daemons' own view agrees with what tsvs reports.
    const st = await ecmpStatus(lab);
    const routerCtl = lab.state.ecmp!.routerCtl!;
    const routes = birdc(lab, routerCtl, `show route ${LAB.vip}/32 all`);
    for (const s of st) {
      assert.equal(s.announce?.peers[0]?.bgpState, 'Established', `${s.director.role}: tsvs reports the session up`);
      assert.equal(s.announce?.peers[0]?.exported, 1);
      assert.equal(s.announce?.peers[0]?.bfd, 'Up');
      assert.deepEqual(s.announce?.vips, [{ prefix: `${LAB.vip}/32`, announced: true, reason: 'quorum' }]);
      assert.match(birdc(lab, s.announce!.control!, 'show protocols uplink1'), /uplink1\s+BGP\s+---\s+up\s+\S+\s+Established/);
      assert.match(birdc(lab, s.announce!.control!, 'show route export uplink1'), new RegExp(`${LAB.vip.replace(/\./g, '\\.')}/32\\s+blackhole`));
      assert.match(birdc(lab, routerCtl, `show protocols dir${s.director.index}`), /Established/);
      assert.ok(routes.includes(`BGP.next_hop: ${s.director.lan}`), `router BIRD holds ${s.director.lan} as a next hop:\n${routes}`);
      assert.equal(s.inRouterFib, true);
    }
    assert.deepEqual((await requestOnce(d1.socket, { op: 'get-sysctl' })).sloppy_tcp, 1);

    // 1. kill -9 one director while the flows run.
    let before = new Map<FlowKey, { dirs: Set<string>; rs: Set<string> }>();
    let killedFlows = 0;
    let survivorsMoved = 0;
    const flows1 = await runFlows(lab, 6000, async (keys) => {
      await new Promise((r) => setTimeout(r, 500));
      before = await whereFlowsAre(dirs, keys);
      const share = dirs.map((d) => [...before.values()].filter((e) => e.dirs.has(d.role)).length);
      figures.push(`shares of ${FLOWS} flows over 3 directors: ${share.join(' / ')}`);
      for (const [i, n] of share.entries()) assert.ok(n > 0, `ECMP gave director ${i + 1} flows (${share.join('/')})`);
      // Each director's --stats shows its share.
      for (const d of dirs) {
        const list = await requestOnce(d.socket, { op: 'list' });
        assert.ok(list.services[0]!.stats.conns > 0, `${d.role} --stats counts its connections`);
      }
      killedFlows = [...before.values()].filter((e) => e.dirs.has(d3.role)).length;
      const pid = lab.state.procs.find((p) => p.role === d3.role && p.what === 'tsvsd')!.pid;
      process.kill(pid, 'SIGKILL');
      const ms = await waitHops(lab, [d1.lan, d2.lan], 5000);
      figures.push(`kill -9 ${d3.role}: routes withdrawn after ${ms} ms (BFD detection ${DETECT_MS} ms)`);
      assert.ok(ms <= DETECT_MS + 1000, `withdrawn within the detection time (+1 s margin): ${ms} ms`);
      await new Promise((r) => setTimeout(r, 1500));
      const after = await whereFlowsAre([d1, d2], keys);
      const m = moved(before, after);
      survivorsMoved = m.moved - killedFlows;
      assert.equal(m.rsChanged, 0, 'no flow was given another real server');
    });
    assertIntact(lab, flows1, before, 'kill -9');
    figures.push(`kill -9: ${killedFlows} flows moved off the dead director, ${Math.max(0, survivorsMoved)} of the survivors' flows moved between survivors, 0 broke`);
    assert.equal(survivorsMoved, 0, 'resilient hashing: the survivors keep their own flows');

    // Restart the killed director: it announces again.
    await startEcmpDirector(lab, d3);
    await waitHops(lab, [d1.lan, d2.lan, d3.lan], 15_000);

    // A director that dies without closing its sessions (its peering cable pulled): BFD notices.
    await lab.sh('switch', `ip link set p-${d3.role} down`);
    const bfdMs = await waitHops(lab, [d1.lan, d2.lan], 5000);
    figures.push(`peering link of ${d3.role} cut (no FIN, no Cease): routes withdrawn after ${bfdMs} ms (BFD ${DETECT_MS} ms)`);
    assert.ok(bfdMs <= DETECT_MS + 1000, `BFD withdrew within the detection time (+1 s margin): ${bfdMs} ms`);
    await lab.sh('switch', `ip link set p-${d3.role} up`);
    await waitHops(lab, [d1.lan, d2.lan, d3.lan], 15_000);

    // 2. A fourth director joins while flows run.
    const d4 = await addEcmpDirector(lab, false);
    let movedAdd = 0;
    let bucketsMoved = -1;
    const flows2 = await runFlows(lab, 20_000, async (keys) => {
      await new Promise((r) => setTimeout(r, 500));
      before = await whereFlowsAre(dirs, keys);
      const b3 = await routerBuckets(lab);
      const t0 = Date.now();
      await startEcmpDirector(lab, d4);
      await waitHops(lab, [d1.lan, d2.lan, d3.lan, d4.lan], 15_000);
      const b4 = await routerBuckets(lab);
      const changed = b4.filter((g, i) => g !== b3[i]);
      bucketsMoved = changed.length;
      assert.equal(b3.length, BUCKETS);
      assert.equal(changed.length, BUCKETS / 4, `the router's resilient group moved exactly the new director's share of buckets`);
      assert.ok(changed.every((g) => g === d4.lan), 'every moved bucket went to the new director');
      assert.ok(Date.now() - t0 < 16_000, `the fourth director joined while the flows still ran (${Date.now() - t0} ms)`);
      await new Promise((r) => setTimeout(r, 1500));
      const after = await whereFlowsAre([...dirs, d4], keys);
      const m = moved(before, after);
      movedAdd = m.moved;
      assert.equal(m.rsChanged, 0, 'no flow was given another real server');
      const onD4 = [...after.values()].filter((e) => e.dirs.has(d4.role)).length;
      assert.ok(onD4 > 0, 'the fourth director carries flows');
      assert.equal(onD4, movedAdd, 'the only flows that moved are those the new director took');
    }, 20_000, FLOWS_JOIN);
    assertIntact(lab, flows2, before, 'fourth director');
    figures.push(`3 -> 4 directors: ${bucketsMoved} of ${BUCKETS} router buckets and ${movedAdd} of ${FLOWS_JOIN} flows (${((100 * movedAdd) / FLOWS_JOIN).toFixed(0)}%) changed director, 0 broke`);
    // Resilient hashing moves 1/4 of the buckets; the flows in them are a binomial draw (mean 25 %).
    // Hash-threshold multipath would move about half.
    assert.ok(movedAdd <= FLOWS_JOIN * 0.35, `at most about 1/4 of the flows moved: ${movedAdd} of ${FLOWS_JOIN}`);
    dirs.push(d4);

    // 3. Drain one: its routes go first, then its connections finish (through the others).
    let drainMs = 0;
    let drainAfter = 0;
    let inBefore = 0;
    const flows3 = await runFlows(lab, 6000, async (keys) => {
      await new Promise((r) => setTimeout(r, 500));
      before = await whereFlowsAre(dirs, keys);
      const t0 = Date.now();
      const r = spawnSync(process.execPath, [`${ROOT}bin/tsvs.mjs`, 'director', 'drain', '--socket', d2.socket], { encoding: 'utf8' });
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, /DRAINED/);
      const cli = Date.now() - t0;
      const after = await waitHops(lab, [d1.lan, d3.lan, d4.lan], 3000);
      drainMs = cli;
      drainAfter = after;
      const a = await requestOnce(d2.socket, { op: 'announce' });
      assert.equal(a.peers[0]?.bgpState, 'Established', 'the session stays up while drained');
      assert.equal(a.peers[0]?.exported, 0);
      await new Promise((r2) => setTimeout(r2, 300));
      inBefore = (await requestOnce(d2.socket, { op: 'list' })).totals!.inpkts;
    });
    assertIntact(lab, flows3, before, 'drain');
    const inAfter = (await requestOnce(d2.socket, { op: 'list' })).totals!.inpkts;
    assert.equal(inAfter, inBefore, 'no packet reaches a drained director once its routes are gone');
    figures.push(`drain ${d2.role}: \`tsvs director drain\` returned after ${drainMs} ms (node start-up included), the router's FIB had dropped it ${drainAfter} ms later; its ${[...before.values()].filter((e) => e.dirs.has(d2.role)).length} flows finished through the others, 0 broke`);
    const un = spawnSync(process.execPath, [`${ROOT}bin/tsvs.mjs`, 'director', 'undrain', '--socket', d2.socket], { encoding: 'utf8' });
    assert.equal(un.status, 0, un.stderr);
    await waitHops(lab, [d1.lan, d2.lan, d3.lan, d4.lan], 5000);

    // A director whose health checks fail loses quorum and withdraws; the others keep announcing.
    const blackholes = lab.realServers.map((rs) => `ip route add blackhole ${rs.ip}/32`).join(' && ');
    await lab.sh(d1.role, blackholes);
    const qMs = await waitHops(lab, [d2.lan, d3.lan, d4.lan], 10_000);
    const q = await requestOnce(d1.socket, { op: 'announce' });
    assert.deepEqual(q.vips, [{ prefix: `${LAB.vip}/32`, announced: false, reason: `no quorum: TCP ${LAB.vip}:${lab.state.ports.http}` }]);
    figures.push(`${d1.role} lost quorum (its checks fail: fall 2 x 1 s): withdrawn ${qMs} ms after its checks started failing`);
    await lab.sh(d1.role, lab.realServers.map((rs) => `ip route del blackhole ${rs.ip}/32`).join(' && '));
    await waitHops(lab, [d1.lan, d2.lan, d3.lan, d4.lan], 10_000);

    // 4. For comparison, without sloppy_tcp: a flow ECMP moves finds no conn on its new director.
    for (const d of dirs) await requestOnce(d.socket, { op: 'set-sysctl', sysctl: { sloppy_tcp: 0 } });
    let movedNoSloppy = 0;
    const flows4 = await runFlows(
      lab,
      5000,
      async (keys) => {
        await new Promise((r) => setTimeout(r, 500));
        before = await whereFlowsAre(dirs, keys);
        movedNoSloppy = [...before.values()].filter((e) => e.dirs.has(d4.role)).length;
        const pid = lab.state.procs.filter((p) => p.role === d4.role && p.what === 'tsvsd').pop()!.pid;
        process.kill(pid, 'SIGKILL');
        await waitHops(lab, [d1.lan, d2.lan, d3.lan], 5000);
      },
      4000,
    );
    const brokenFlows = flows4.filter((f) => !f.ok);
    const broken = brokenFlows.length;
    figures.push(`without sloppy_tcp or sync, kill -9 of 1 of 4: ${broken} of ${FLOWS} flows broke (${movedNoSloppy} were on the dead director)`);
    // Resilient hashing moves no other director's flow: every broken flow was on the dead one, and every
    // flow only the dead one held breaks. (A flow whose first packets met the ECMP group while it was
    // being updated also has a conn on another director; it survives when it returns there.)
    for (const f of brokenFlows) assert.ok(before.get(key(f.cip, f.cport))?.dirs.has(d4.role), `flow ${f.cip}:${f.cport} broke but was not on the dead director`);
    const onlyDead = flows4.filter((f) => { const d = before.get(key(f.cip, f.cport))?.dirs; return d !== undefined && d.size === 1 && d.has(d4.role); });
    for (const f of onlyDead) assert.ok(!f.ok, `flow ${f.cip}:${f.cport} was only on the dead director and survived without sloppy_tcp or sync`);
    assert.ok(broken > 0, 'the dead director carried flows: the measurement measures something');

    // 5. Connection sync (every director a master and a backup on mgmt0), still without sloppy_tcp:
    // once the dead director's connections are on the others, its flows survive.
    await startEcmpDirector(lab, d4);
    await waitHops(lab, [d1.lan, d2.lan, d3.lan, d4.lan], 15_000);
    await requestOnce(d4.socket, { op: 'set-sysctl', sysctl: { sloppy_tcp: 0 } });
    const daemon = (state: 'master' | 'backup') => ({ state, mcastIfn: 'mgmt0', syncid: SYNC_ID, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 });
    let victimFlows = 0;
    let syncMs = 0;
    const flows5 = await runFlows(
      lab,
      14_000,
      async (keys) => {
        await new Promise((r) => setTimeout(r, 500));
        before = await whereFlowsAre(dirs, keys);
        const mine = [...before].filter(([, e]) => e.dirs.has(d3.role)).map(([k]) => k);
        victimFlows = mine.length;
        const t0 = Date.now();
        for (const d of dirs) for (const st of ['master', 'backup'] as const) await requestOnce(d.socket, { op: 'start-daemon', daemon: daemon(st) });
        // A connection is sent at its 3rd packet and every 50th after (sync_threshold 3, sync_period 50):
        // these are past their 3rd, so at their 53rd (~5 s at 10 packets/s); a message leaves within 2 s.
        const survivors = [d1, d2, d4];
        await waitFor(`${d3.role}'s connections on every other director`, async () => {
          const w = await whereFlowsAre(survivors, keys);
          return mine.every((k) => w.get(k)?.dirs.size === survivors.length);
        }, 11_000, 250);
        syncMs = Date.now() - t0;
        process.kill(pidOf(lab, d3), 'SIGKILL');
        await waitHops(lab, [d1.lan, d2.lan, d4.lan], 5000);
      },
      6000,
    );
    const broken5 = flows5.filter((f) => !f.ok).length;
    figures.push(`with sync, without sloppy_tcp, kill -9 of 1 of 4: ${broken5} of ${FLOWS} flows broke (${victimFlows} were on the dead director; its connections were on every other director ${syncMs} ms after the daemons started)`);
    assert.ok(victimFlows > 0, 'the dead director carried flows');
    assertIntact(lab, flows5, before, 'sync, no sloppy_tcp');
    const counters = await requestOnce(d1.socket, { op: 'counters' });
    assert.ok((counters.sync?.backup_conns_new ?? 0) > 0, `${d1.role}'s backup installed connections: ${JSON.stringify(counters.sync)}`);

    // 6. mh + sloppy_tcp + sync: kill -9 one of the 3 left.
    for (const d of [d1, d2, d4]) await requestOnce(d.socket, { op: 'set-sysctl', sysctl: { sloppy_tcp: 1 } });
    let victim6 = 0;
    const flows6 = await runFlows(lab, 7000, async (keys) => {
      await new Promise((r) => setTimeout(r, 3000));
      before = await whereFlowsAre([d1, d2, d4], keys);
      // Every director holds every flow now (sync): the dead one's own share is its share of the buckets.
      victim6 = (await routerBuckets(lab)).filter((g) => g === d4.lan).length;
      process.kill(pidOf(lab, d4), 'SIGKILL');
      await waitHops(lab, [d1.lan, d2.lan], 5000);
    });
    assertIntact(lab, flows6, before, 'sync + sloppy_tcp');
    figures.push(`with sync and sloppy_tcp, kill -9 of 1 of 3: 0 of ${FLOWS} flows broke (the dead director owned ${victim6} of the router's ${BUCKETS} buckets)`);

    // SIGTERM: tsvsd stops BIRD first (a Cease to the router), BIRD does not outlive it.
    process.kill(pidOf(lab, d1), 'SIGTERM');
    const termMs = await waitHops(lab, [d2.lan], 5000);
    figures.push(`SIGTERM ${d1.role}: withdrawn after ${termMs} ms`);
    await waitFor(`${d1.role}'s processes gone`, async () => (await namespacePids(d1.ns)).length === 0, 5000);
  } finally {
    process.stdout.write(`# ECMP figures:\n${figures.map((f) => `#   ${f}`).join('\n')}\n`);
    await lab.down();
  }
});
