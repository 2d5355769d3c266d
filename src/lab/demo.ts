// The README's main command: NAT, DR, TUN and FullNAT each built in a namespace lab, loaded, listed and traced.
import { spawnSync } from 'node:child_process';
import { labUp, LAB, type Lab, type LabMode } from './topology.ts';
import { startDirector, defineLabServices, labClient } from './director.ts';
import { runTrace, formatTracePacket } from '../cli/trace.ts';
import type { TracePacket } from '../dp/trace.ts';
import { Netns, waitFor } from './netns.ts';
import { haPair, startHaDirector, haState, haConns } from './failover.ts';
import { moduleCommand } from '../root.ts';
import type { DownloadRun } from './client.ts';

import { ROOT } from '../root.ts';
import { runEcmpScene } from './ecmp-scene.ts';
import { accessLines, haveNginx, startLabNginx } from './nginx.ts';
const REQUESTS = 300;

const STORY: Record<LabMode, { title: string; how: string[] }> = {
  nat: {
    title: 'NAT (tsvsadm -m, masquerading)',
    how: [
      'The director rewrites the destination VIP→RIP on the way in (INPUT) and the source RIP→VIP on the',
      "way back (FORWARD): the real servers' gateway is the DIP 198.18.2.1, so replies return through it.",
    ],
  },
  dr: {
    title: 'DR (tsvsadm -g, direct routing)',
    how: [
      'The director keeps the IP addresses and only re-addresses the frame to the real server MAC on the',
      'shared LAN. Each real server holds the VIP on lo (arp_ignore=1, arp_announce=2) and replies',
      'straight to the client: the reply never crosses the director.',
    ],
  },
  tun: {
    title: 'TUN (tsvsadm -i, IP-in-IP)',
    how: [
      'The director wraps the packet in an outer IPv4 header DIP→RIP and routes it to the remote site;',
      "the real server unwraps it (tsvs's userspace decapsulator: this kernel has no ipip module) and",
      'replies straight from the VIP.',
    ],
  },
  fullnat: {
    title: 'FullNAT (tsvsadm -b, DPVS\'s full NAT)',
    how: [
      'The director rewrites both ends: CIP:cport→VIP:vport leaves as LIP:lport→RIP:rport. The real',
      'servers sit on the remote site with the router as their gateway and nothing set up: they answer',
      `the director's local address ${LAB.lip}, which maps each reply back to its client.`,
    ],
  },
};

function say(s = ''): void {
  process.stdout.write(s + '\n');
}

/** Runs tsvsadm as a user would and returns its output. */
function tsvsadm(lab: Lab, ...args: string[]): string {
  const r = spawnSync(process.execPath, [`${ROOT}bin/tsvsadm.mjs`, '--socket', lab.director.socket, ...args], { encoding: 'utf8', timeout: 30_000 });
  return (r.stdout || '') + (r.stderr || '');
}

async function demoMode(mode: LabMode): Promise<boolean> {
  const story = STORY[mode];
  say(`\n=== ${story.title} ===`);
  for (const l of story.how) say(l);
  const t0 = Date.now();
  const lab = await labUp({ mode, servers: 3, name: `demo${mode}` });
  try {
    await startDirector(lab);
    await defineLabServices(lab);
    say(`lab up in ${((Date.now() - t0) / 1000).toFixed(1)} s: client ${LAB.client}, VIP ${LAB.vip}, real servers ${lab.realServers.map((r) => r.ip).join(', ')}`);

    // One request per real server first, so ARP has resolved them and the traced packet goes straight out.
    const warm = await labClient(lab, 'http', 80, lab.realServers.length);
    const wantPackets = mode === 'nat' ? 2 : 1;
    const tracing = runTrace({ socket: lab.director.socket, cip: LAB.client, port: 80, count: wantPackets, timeoutMs: 15_000 }, () => {});
    await new Promise((r) => setTimeout(r, 300));
    const traced = await labClient(lab, 'http', 80, 1);
    const packets: TracePacket[] = await tracing;
    const run = await labClient(lab, 'http', 80, REQUESTS, 4);

    say(`\n${REQUESTS} HTTP requests from the client to ${LAB.vip}:80 (a new connection each): ${run.ok} answered, ${run.failed} failed, ${run.ms} ms`);
    say('  real server   RIP             requests');
    for (const rs of lab.realServers) say(`  ${rs.role.padEnd(12)}  ${rs.ip.padEnd(14)}  ${String(run.byServer[rs.role] ?? 0).padStart(8)}`);
    if (run.errors.length) say(`  errors: ${run.errors.join('; ')}`);

    say('\n$ tsvsadm -L -n --stats');
    process.stdout.write(tsvsadm(lab, '-L', '-n', '--stats'));

    say(`\nOne connection, traced through the director (tsvs trace --cip ${LAB.client} --port 80):`);
    packets.forEach((p, i) => say(formatTracePacket(p, i + 1)));
    if (mode === 'fullnat') say(`  (the reply goes from the real server to the LIP ${LAB.lip}; the director maps it back to VIP → ${LAB.client})`);
    else if (mode !== 'nat') say(`  (the reply goes from the real server straight to ${LAB.client}: the director never sees it)`);
    const ppOk = mode === 'fullnat' ? await proxyScene(lab) : true;
    const ok = ppOk && run.failed === 0 && warm.failed === 0 && traced.failed === 0 && packets.length === wantPackets;
    if (!ok) say(`!! ${mode}: ${run.failed + warm.failed + traced.failed} failed requests, ${packets.length}/${wantPackets} traced packets`);
    return ok;
  } finally {
    await lab.down();
  }
}

/**
 * FullNAT hides the client from the real servers; the PROXY protocol hands it back. Debian's nginx on
 * each real server (`listen 8081 proxy_protocol`) logs the address the header carried.
 */
async function proxyScene(lab: Lab): Promise<boolean> {
  const port = 8081;
  say(`\nThe client's address for the application: PROXY protocol v2 on ${LAB.vip}:${port}, nginx on each real server`);
  if (!haveNginx()) {
    say('(skipped: nginx is not installed: apt-get install nginx-light)');
    return true;
  }
  const logs = await Promise.all(lab.realServers.map((r) => startLabNginx(lab, r.role, [port])));
  const rules = [`-A -t ${LAB.vip}:${port} -s rr --proxy-protocol v2`, `-P -t ${LAB.vip}:${port} -z ${LAB.lip} -F lan0`,
    ...lab.realServers.map((r) => `-a -t ${LAB.vip}:${port} -r ${r.ip}:${port} -b`)];
  for (const l of rules) {
    say(`$ tsvsadm ${l}`);
    process.stdout.write(tsvsadm(lab, ...l.split(' ')));
  }
  const n = 2 * lab.realServers.length;
  const r = await lab.exec('client', ['sh', '-c', `for i in $(seq ${n}); do curl -sS -m 5 http://${LAB.vip}:${port}/ || exit 1; done`], 60_000);
  say(`${n} requests with curl: ${r.code === 0 ? r.stdout.trim().split('\n').join(' ') : `failed: ${r.stderr.trim()}`}`);
  say('nginx access logs ($proxy_protocol_addr:$proxy_protocol_port, then $remote_addr, the LIP the connection came from):');
  let good = 0;
  lab.realServers.forEach((rs, i) => {
    for (const l of accessLines(logs[i]!)) {
      const [addr, cport, remote] = l.split(' ');
      say(`  ${rs.role}: ${addr}:${cport}  via ${remote}`);
      if (addr === LAB.client && remote === LAB.lip) good++;
    }
  });
  const ok = r.code === 0 && good === n;
  if (!ok) say(`!! PROXY protocol: ${good}/${n} requests logged the client's address`);
  return ok;
}

const DOWNLOAD = 24 << 20;
const RATE = 3 << 20;

/**
 * The failover scene: two tsvsd directors (VRRP, connection sync both ways) in front of DR real
 * servers, a paced download through the VIP, `kill -9` of the master, the download finishing intact.
 */
async function demoFailover(): Promise<boolean> {
  say('\n=== Failover: two directors, VRRP and connection sync ===');
  say('Both directors run VRRP for the VIP (ds1 priority 150, ds2 priority 100) and the kernel\'s');
  say('connection-sync protocol both ways, so the backup knows every established connection. A download');
  say(`of ${DOWNLOAD >> 20} MB runs through the VIP at ${RATE >> 20} MB/s while the master is killed with SIGKILL.`);
  const t0 = Date.now();
  const lab = await labUp({ mode: 'dr', servers: 2, name: 'demoha' });
  const n = Netns.create('demoha');
  const events: Array<[number, string]> = [];
  const at = (what: string) => events.push([Date.now(), what]);
  try {
    const [ds1, ds2] = await haPair(lab, n);
    const master = await startHaDirector(lab, n, ds1, 150, 'tsvsd1');
    await startHaDirector(lab, n, ds2, 100, 'tsvsd2');
    await waitFor('ds1 MASTER', async () => (await haState(ds1)) === 'MASTER', 10_000, 25);
    await waitFor('ds2 BACKUP', async () => (await haState(ds2)) === 'BACKUP', 5000, 25);
    say(`lab up, ds1 MASTER and ds2 BACKUP in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    const start = Date.now();
    at('download starts through ds1');
    const download = lab.exec(
      'client',
      [...moduleCommand(import.meta.url, './client'), '--mode', 'download', '--vip', LAB.vip, '--port', String(lab.state.ports.http), '--count', String(DOWNLOAD), '--rate', String(RATE)],
      60_000,
    );
    // The master sends a connection within IPVS_SYNC_FLUSH_TIME (2 s): kill it only once the backup knows it.
    await waitFor('the download synced to ds2', async () => (await haConns(ds2, lab.state.ports.http)) >= 1, 10_000, 100);
    at('ds2 (the backup) holds the download connection: the sync daemon sent it');
    await new Promise((r) => setTimeout(r, Math.max(0, 2500 - (Date.now() - start))));
    process.kill(master.pid, 'SIGKILL');
    at('kill -9 ds1 (the master): no priority-0 advert, the backup must time out');
    await waitFor('ds2 MASTER', async () => (await haState(ds2)) === 'MASTER', 10_000, 20);
    at('ds2 MASTER: VIP taken, gratuitous ARPs sent; it forwards the download on');
    const r = await download;
    let d: DownloadRun;
    try {
      d = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as DownloadRun;
    } catch {
      throw new Error(`the download client failed (${r.code}): ${JSON.stringify(r).slice(0, 600)}`);
    }
    at(`download ends: ${(d.bytes / (1 << 20)).toFixed(1)} MB, ${d.ok ? 'every byte matches the real server\'s pattern' : `FAILED (${d.error ?? 'bytes differ'})`}`);
    say('\ntimeline');
    for (const [t, what] of events) say(`  ${((t - start) / 1000).toFixed(2).padStart(6)} s  ${what}`);
    say('\nbytes received per second (the gap is the takeover, TCP retransmits across it):');
    say('  ' + d.perSecond.map((b, i) => `${i}s ${(b / (1 << 20)).toFixed(1)}`).join('  '));
    const take = events[3]![0] - events[2]![0];
    say(`\ntakeover ${take} ms after the kill (Master_Down_Interval 3609 ms at priority 100, advert_int 1)`);
    return d.ok;
  } finally {
    await n.destroy();
    await lab.down();
  }
}

/** Runs the three demos; resolves with the exit code (non-zero if any request failed). */
export async function demo(modes: LabMode[] = ['nat', 'dr', 'tun', 'fullnat'], scenes: { failover: boolean; scaleOut: boolean } = { failover: true, scaleOut: true }): Promise<number> {
  if (typeof process.getuid === 'function' && process.getuid() !== 0) {
    process.stderr.write('npm run demo builds network namespaces: run it as root\n');
    return 1;
  }
  const t0 = Date.now();
  say('tsvs demo: a Linux Virtual Server director in TypeScript, in private network namespaces');
  say('(client → router → director → real servers; addresses from 198.18.0.0/15; removed afterwards)');
  let failed = 0;
  for (const m of modes) {
    try {
      if (!(await demoMode(m))) failed++;
    } catch (e) {
      failed++;
      say(`!! ${m}: ${(e as Error).message}`);
    }
  }
  let haOk = true;
  if (scenes.failover) {
    try {
      haOk = await demoFailover();
    } catch (e) {
      haOk = false;
      say(`!! failover: ${(e as Error).message}`);
    }
  }
  let scaleOk = true;
  if (scenes.scaleOut) {
    say('\n=== Scale out: three directors behind a router\'s ECMP, the VIP announced over BGP (BIRD) ===');
    say('Every director runs mh (the same table everywhere) with sloppy_tcp=1, so a flow the router moves');
    say('to another director reaches the same real server; one director is killed with SIGKILL mid-transfer.');
    if (spawnSync('sh', ['-c', 'command -v bird'], { encoding: 'utf8' }).status !== 0) say('(skipped: BIRD 2 is not installed: apt-get install bird2)');
    else {
      try {
        scaleOk = (await runEcmpScene(say)) === 0;
      } catch (e) {
        scaleOk = false;
        say(`!! scale-out: ${(e as Error).message}`);
      }
    }
  }
  const parts = [...(modes.length ? [`${modes.length - failed}/${modes.length} forwarding methods worked`] : []), ...(scenes.failover ? [`failover ${haOk ? 'worked' : 'FAILED'}`] : []), ...(scenes.scaleOut ? [`scale-out ${scaleOk ? 'worked' : 'FAILED'}`] : [])];
  say(`\n${parts.join(', ')}; demo done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  return failed === 0 && haOk && scaleOk ? 0 : 1;
}

if (process.argv[1]?.endsWith('demo.ts')) {
  const args = process.argv.slice(2);
  const modes = args.filter((a): a is LabMode => ['nat', 'dr', 'tun', 'fullnat'].includes(a));
  // `npm run demo -- failover` or `-- ecmp`: that scene alone; `npm run demo -- nat`: that method alone.
  const failover = args.includes('failover');
  const ecmp = args.includes('ecmp');
  const all = modes.length === 0 && !failover && !ecmp;
  demo(all ? undefined : modes, { failover: all || failover, scaleOut: all || ecmp }).then((c) => process.exit(c));
}
