// The benchmark's test beds: the namespace lab with one director configuration each (kernel, nftables, HAProxy, tsvs).
//
// Every bed is a lab from src/lab/topology.ts with two real servers running nginx (HTTP 200 "ok"),
// iperf3 -s and, during UDP runs, an nftables ingress sink that counts and drops the flood. CPU split as
// in perf-baseline.md: the director's work on CPU1 (RPS of its interfaces, tsvsd/HAProxy pinned there),
// load generators and servers on CPU0. Offloads stay at their defaults everywhere.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { labUp, labMac, tsvsdArgs, LAB, type Lab, type LabMode } from '../../src/lab/topology.ts';
import { waitFor } from '../../src/lab/netns.ts';
import { runCmd } from './measure.ts';

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));

export const BED_NAMES = ['kernel', 'nftables', 'haproxy', 'tsvs-nat', 'tsvs-dr', 'tsvs-tun'] as const;
export type BedName = (typeof BED_NAMES)[number];

export const BED_LABELS: Record<BedName, string> = {
  kernel: 'kernel forwarding (the limit)',
  nftables: 'kernel nftables DNAT, numgen rr',
  haproxy: 'HAProxy mode tcp, 1 thread',
  'tsvs-nat': 'tsvs NAT',
  'tsvs-dr': 'tsvs DR',
  'tsvs-tun': 'tsvs TUN',
};

export const GEN_CPU = 0;
export const DIRECTOR_CPU = 1;
export const HTTP_PORT = 80;
export const UDP_PORT = 9;
export const IPERF_PORT = 5201;
const SERVERS = 2;

export interface Bed {
  name: BedName;
  lab: Lab;
  /** Where the client sends: the VIP, or rs1's address for plain forwarding. */
  target: string;
  /** The UDP generator runs in the router namespace on lan0, aimed at the director's lan0 MAC. */
  gen: { role: string; ifname: string; dstMac: string; src: string };
  /** The director's own process (tsvsd, HAProxy), null when the kernel does the work. */
  directorPid: number | null;
  /** Real-server roles whose sinks count the UDP flood. */
  rsRoles: string[];
  /** HTTP goes to this many real servers (1 for plain forwarding). */
  httpServers: number;
  udp: boolean;
}

const labMode = (b: BedName): LabMode => (b === 'tsvs-dr' ? 'dr' : b === 'tsvs-tun' ? 'tun' : 'nat');

/** Builds a bed; on failure everything built so far is torn down. `log` reports progress. */
export async function bedUp(name: BedName, log: (s: string) => void): Promise<Bed> {
  const mode = labMode(name);
  const tsvs = name.startsWith('tsvs-');
  const lab = await labUp({ mode, servers: SERVERS, name: `b${name.replace(/[^a-z]/g, '').slice(0, 8)}`, programs: false });
  try {
    const rs = lab.realServers;
    const rsRoles = rs.map((r) => r.role);
    const dirIfs = lab.director.interfaces;
    // Client and real servers: many ephemeral ports and TIME_WAIT reuse for the new-connection runs.
    const tcpSysctls = 'sysctl -qw net.ipv4.ip_local_port_range="1024 65535" net.ipv4.tcp_tw_reuse=1 net.core.somaxconn=4096 net.ipv4.tcp_max_syn_backlog=4096';
    await lab.sh('client', tcpSysctls);
    for (const r of rsRoles) await lab.sh(r, tcpSysctls);
    // RPS: everything entering the director is processed on the director's core (a NIC's IRQ affinity).
    await lab.sh('director', dirIfs.map((i) => `echo ${1 << DIRECTOR_CPU} > /sys/class/net/${i}/queues/rx-0/rps_cpus`).join(' && '));

    let target: string = LAB.vip;
    let directorPid: number | null = null;
    if (!tsvs) {
      await lab.sh(
        'director',
        [
          `ip addr add ${LAB.directorLan}/24 dev lan0`,
          `ip addr add ${LAB.dip}/24 dev nat0`,
          `ip route add ${LAB.clientNet} via ${LAB.routerLan}`,
          tcpSysctls,
          ...(name === 'kernel' ? [] : [`ip addr add ${LAB.vip}/32 dev lan0`]),
          `sysctl -qw net.ipv4.ip_forward=${name === 'haproxy' ? 0 : 1}`,
        ].join(' && '),
      );
      if (name === 'kernel') {
        // Plain routing to rs1: the router learns the inside net through the director.
        await lab.sh('router', `ip route add ${LAB.natNet} via ${LAB.directorLan}`);
        target = rs[0]!.ip;
      }
      if (name === 'nftables') await nftDnat(lab, rs.map((r) => r.ip));
      if (name === 'haproxy') directorPid = await startHaproxy(lab, rs.map((r) => r.ip));
    } else {
      directorPid = await startTsvsd(lab, mode, rs.map((r) => r.ip));
    }
    log(`  ${name}: lab up${directorPid ? `, director pid ${directorPid}` : ''}`);
    await startServers(lab, rsRoles);
    // Whatever runs in the real servers (the TUN decapsulator too) and the client shares CPU0.
    await pinNamespace(lab, [...rsRoles, 'client'], GEN_CPU);
    await waitReachable(lab, target);
    return {
      name,
      lab,
      target,
      gen: { role: 'router', ifname: 'lan0', dstMac: labMac(LAB.directorLan), src: LAB.client },
      directorPid,
      rsRoles: name === 'kernel' ? [rsRoles[0]!] : rsRoles,
      httpServers: name === 'kernel' ? 1 : SERVERS,
      udp: name !== 'haproxy',
    };
  } catch (e) {
    await lab.down();
    throw e;
  }
}

async function nftDnat(lab: Lab, rips: string[]): Promise<void> {
  const map = rips.map((ip, i) => `${i} : ${ip}`).join(', ');
  const rules = `table ip tsvsbench {
  chain pre {
    type nat hook prerouting priority dstnat; policy accept;
    ip daddr ${LAB.vip} tcp dport ${HTTP_PORT} dnat to numgen inc mod ${rips.length} map { ${map} }
    ip daddr ${LAB.vip} udp dport ${UDP_PORT} dnat to numgen inc mod ${rips.length} map { ${map} }
    ip daddr ${LAB.vip} tcp dport ${IPERF_PORT} dnat to ${rips[0]}
  }
}
`;
  const r = await runCmd('ip', ['netns', 'exec', lab.ns('director'), 'nft', '-f', '-'], 15_000, rules);
  if (r.code !== 0) throw new Error(`nft -f failed: ${r.stderr.trim()}`);
}

async function startHaproxy(lab: Lab, rips: string[]): Promise<number> {
  const dir = join(lab.state.dir, 'haproxy');
  mkdirSync(dir, { recursive: true });
  const cfg = join(dir, 'haproxy.cfg');
  writeFileSync(
    cfg,
    `global
  nbthread 1
  maxconn 9000
defaults
  mode tcp
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend http
  bind ${LAB.vip}:${HTTP_PORT}
  default_backend web
backend web
  balance roundrobin
${rips.map((ip, i) => `  server rs${i + 1} ${ip}:${HTTP_PORT}`).join('\n')}
frontend iperf
  bind ${LAB.vip}:${IPERF_PORT}
  default_backend iperf
backend iperf
  server rs1 ${rips[0]}:${IPERF_PORT}
`,
  );
  const p = await lab.startProcess('director', 'haproxy', ['taskset', '-c', String(DIRECTOR_CPU), 'haproxy', '-db', '-f', cfg]);
  await waitListening(lab, 'director', HTTP_PORT);
  return p.pid;
}

/** Extra tsvsd options for A/B runs (env TSVS_BENCH_TSVSD_ARGS, split on blanks), e.g. `--io xdp`. */
function extraTsvsdArgs(): string[] {
  return (process.env.TSVS_BENCH_TSVSD_ARGS ?? '').split(/\s+/).filter(Boolean);
}

async function startTsvsd(lab: Lab, mode: LabMode, rips: string[]): Promise<number> {
  const p = await lab.startProcess(
    'director',
    'tsvsd',
    ['taskset', '-c', String(DIRECTOR_CPU), process.execPath, '--import', 'tsx', `${ROOT}src/cli/tsvsd.ts`, ...tsvsdArgs(lab.director), ...extraTsvsdArgs()],
    { ready: /control socket listening/, timeoutMs: 30_000 },
  );
  const flag = mode === 'nat' ? '-m' : mode === 'dr' ? '-g' : '-i';
  const rip = (ip: string, port: number) => (mode === 'nat' ? `${ip}:${port}` : ip);
  const vip = LAB.vip;
  const cmds = [
    `-A -t ${vip}:${HTTP_PORT} -s rr`,
    ...rips.map((ip) => `-a -t ${vip}:${HTTP_PORT} -r ${rip(ip, HTTP_PORT)} ${flag}`),
    `-A -u ${vip}:${UDP_PORT} -s rr`,
    ...rips.map((ip) => `-a -u ${vip}:${UDP_PORT} -r ${rip(ip, UDP_PORT)} ${flag}`),
    // iperf3's control and data connections must meet the same server: one real server on this port.
    `-A -t ${vip}:${IPERF_PORT} -s rr`,
    `-a -t ${vip}:${IPERF_PORT} -r ${rip(rips[0]!, IPERF_PORT)} ${flag}`,
  ];
  const r = await runCmd(process.execPath, [`${ROOT}bin/tsvsadm.mjs`, '--socket', lab.director.socket, '-R'], 30_000, cmds.join('\n') + '\n');
  if (r.code !== 0) throw new Error(`tsvsadm -R failed (${r.code}): ${r.stderr.trim()}`);
  return p.pid;
}

/** nginx (one worker, `return 200 "ok\n"`) and a persistent iperf3 server in each real server, on CPU0. */
async function startServers(lab: Lab, roles: string[]): Promise<void> {
  for (const role of roles) {
    const dir = join(lab.state.dir, `nginx-${role}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(
      join(dir, 'nginx.conf'),
      `worker_processes 1;
daemon off;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 8192; }
http {
  access_log off;
  keepalive_requests 10000000;
  keepalive_timeout 75s;
  server {
    listen ${HTTP_PORT} backlog=4096;
    location / { return 200 "ok\\n"; }
  }
}
`,
    );
    await lab.startProcess(role, 'nginx', ['taskset', '-c', String(GEN_CPU), 'nginx', '-p', dir, '-e', join(dir, 'error.log'), '-c', join(dir, 'nginx.conf')]);
    await lab.startProcess(role, 'iperf3', ['taskset', '-c', String(GEN_CPU), 'iperf3', '-s', '-p', String(IPERF_PORT)]);
  }
  for (const role of roles) {
    await waitListening(lab, role, HTTP_PORT);
    await waitListening(lab, role, IPERF_PORT);
  }
}

async function waitListening(lab: Lab, role: string, port: number): Promise<void> {
  await waitFor(
    `port ${port} listening in ${role}`,
    async () => (await lab.exec(role, ['ss', '-Hltn', `sport = :${port}`])).stdout.trim() !== '',
    15_000,
    100,
  );
}

/** Pins every process in the namespaces (all their threads) to one CPU. */
async function pinNamespace(lab: Lab, roles: string[], cpu: number): Promise<void> {
  for (const role of roles) {
    const pids = (await runCmd('ip', ['netns', 'pids', lab.ns(role)], 10_000)).stdout.split('\n').filter((s) => /^\d+$/.test(s.trim()));
    for (const pid of pids) await runCmd('taskset', ['-a', '-p', '-c', String(cpu), pid.trim()], 5_000);
  }
}

/** Waits until the client gets an HTTP answer through the bed (ARP, routes and the director all work). */
async function waitReachable(lab: Lab, target: string): Promise<void> {
  let last = '';
  await waitFor(
    `HTTP through the director to ${target}`,
    async () => {
      const r = await lab.exec('client', ['wrk', '-t1', '-c1', '-d1s', `http://${target}:${HTTP_PORT}/`], 10_000);
      last = r.stdout + r.stderr;
      return r.code === 0 && /Requests\/sec:\s+[1-9]/.test(r.stdout) && !/Non-2xx|Socket errors/.test(r.stdout);
    },
    20_000,
    300,
  ).catch((e: Error) => {
    throw new Error(`${e.message}: ${last.trim().slice(0, 400)}`);
  });
}

/** Installs the UDP sink (count and drop at ingress) in the real servers. */
export async function sinkUp(bed: Bed): Promise<void> {
  for (const role of bed.rsRoles) {
    // The flood to port 9, plain (NAT, DR) or inside IPIP (TUN: inner protocol at byte 29, inner
    // destination port at byte 42 of the outer IPv4 header).
    const rules = `table netdev tsvssink {
  chain in {
    type filter hook ingress device "eth0" priority 0; policy accept;
    udp dport ${UDP_PORT} counter drop
    ip protocol 4 @nh,232,8 17 @nh,336,16 ${UDP_PORT} counter drop
  }
}
`;
    const r = await runCmd('ip', ['netns', 'exec', bed.lab.ns(role), 'nft', '-f', '-'], 10_000, rules);
    if (r.code !== 0) throw new Error(`sink in ${role}: ${r.stderr.trim()}`);
  }
}

/** Packets the sinks have counted so far (sum over real servers). */
export async function sinkCount(bed: Bed): Promise<number> {
  let n = 0;
  for (const role of bed.rsRoles) {
    const r = await runCmd('ip', ['netns', 'exec', bed.lab.ns(role), 'nft', 'list', 'table', 'netdev', 'tsvssink'], 10_000);
    for (const m of r.stdout.matchAll(/counter packets (\d+)/g)) n += Number(m[1]);
  }
  return n;
}

export async function sinkDown(bed: Bed): Promise<void> {
  for (const role of bed.rsRoles) await runCmd('ip', ['netns', 'exec', bed.lab.ns(role), 'nft', 'delete', 'table', 'netdev', 'tsvssink'], 10_000);
}
