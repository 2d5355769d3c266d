// I/O benchmark: small-packet frames/s and TCP Gbps through the L2 forwarder per port kind, beside the kernel.
//
// Run as root: node --import tsx bench/io.ts [--seconds S] [--burst N] [--kinds afpacket,macvtap] [--overload]
//              [--quick (no kernel rows)]
// Lab per variant: A (generator / TCP client, CPU0) ── F (the path under test, CPU1) ── B (sink / TCP server,
// CPU0). Variants: each port kind openPort can open (the L2 forwarder pinned to CPU1), the kernel's bridge
// and the kernel's IP forwarding in F. UDP: bench/udpgen.ts floods 60-byte frames from A; delivered frames
// are counted on B's veth (rx_packets); they carry a MAC B does not own, so B's stack drops them at once.
// TCP: iperf3 (installed with apt-get if missing), 1 stream, offloads at their defaults.
// --overload sweeps the offered UDP rate for AF_PACKET with F's receive work on the forwarder's core (RPS)
// and in the sender's context, to show which set-up degrades gracefully (docs/io.md).
// Writes bench/results/io-latest.json and prints a table. Not a test: nothing is asserted.
import { mkdirSync, writeFileSync, readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { Netns, canUseNetns, run, withNetns } from '../src/lab/netns.ts';
import { OPENABLE_KINDS } from '../src/io/open.ts';
import type { PortKind } from '../src/io/port.ts';
import type { L2fwdStats } from '../src/io/l2fwd.ts';
import { ROOT, withL2fwdLab } from '../src/lab/l2fwd-lab.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string', default: '5' },
    burst: { type: 'string', default: '64' },
    overload: { type: 'boolean', default: false },
    quick: { type: 'boolean', default: false },
    kinds: { type: 'string' },
  },
});
const SECONDS = Number(values.seconds);
const BURST = Number(values.burst);
const GEN_CPU = 0;
const PATH_CPU = 1;

interface UdpResult {
  offeredPps: number;
  deliveredPps: number;
  /** Busy share of the path's core (CPU1) during the run, from /proc/stat. */
  pathCpuBusy: number;
}
interface Row {
  variant: string;
  burst: number | null;
  udp?: UdpResult;
  tcpGbps?: number;
  fwd?: { avgBatchAtoB: number; gsoFramesAtoB: number; rxDropped: number } | undefined;
  error?: string;
}

function cpuTimes(): number[][] {
  return readFileSync('/proc/stat', 'utf8')
    .split('\n')
    .filter((l) => /^cpu\d/.test(l))
    .map((l) => l.trim().split(/\s+/).slice(1).map(Number));
}
function busyShare(before: number[][], after: number[][], cpu: number): number {
  const d = after[cpu].map((v, i) => v - before[cpu][i]);
  const total = d.reduce((s, v) => s + v, 0);
  const idle = d[3] + d[4];
  return total > 0 ? 1 - idle / total : 0;
}

// The flood is addressed to a MAC nobody owns: B's veth counts it (rx_packets), then B's IP layer drops
// it at once as PACKET_OTHERHOST, so the sink costs almost nothing (this kernel has no tc drop action
// and no nftables).
const SINK_MAC = '02:00:00:00:00:99';

async function rxPackets(n: Netns, role: string, ifn: string): Promise<number> {
  return Number((await n.sh(role, `cat /sys/class/net/${ifn}/statistics/rx_packets`)).trim());
}

/** Floods 60-byte UDP frames from A for `seconds` at `rate` (0 = unlimited); counts what reaches B. */
async function udpRun(n: Netns, dstMac: string, dstIp: string, seconds: number, rate = 0): Promise<UdpResult> {
  const before = await rxPackets(n, 'b', 'vb');
  const c0 = cpuTimes();
  const r = await n.exec(
    'a',
    ['taskset', '-c', String(GEN_CPU), process.execPath, '--import', 'tsx', `${ROOT}bench/udpgen.ts`, '--if', 'va', '--dst-mac', dstMac, '--src', '198.18.0.1', '--dst', dstIp, '--seconds', String(seconds), '--rate', String(rate)],
    (seconds + 30) * 1000,
  );
  const c1 = cpuTimes();
  await new Promise((res) => setTimeout(res, 200)); // let queued frames drain
  const after = await rxPackets(n, 'b', 'vb');
  if (r.code !== 0) throw new Error(`udpgen failed: ${r.stderr.trim()}`);
  const g = JSON.parse(r.stdout.trim().split('\n').pop()!) as { sent: number; seconds: number };
  return { offeredPps: Math.round(g.sent / g.seconds), deliveredPps: Math.round((after - before) / g.seconds), pathCpuBusy: Number(busyShare(c0, c1, PATH_CPU).toFixed(3)) };
}

async function ensureIperf3(): Promise<boolean> {
  if ((await run('sh', ['-c', 'command -v iperf3'])).code === 0) return true;
  console.error('iperf3 not found: apt-get install -y iperf3');
  const r = await run('sh', ['-c', 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3 || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq iperf3)'], 300_000);
  return r.code === 0;
}

/** One iperf3 stream A -> B for `seconds`; Gbps received. */
async function tcpRun(n: Netns, dstIp: string, seconds: number): Promise<number> {
  const srv = n.spawn('b', ['taskset', '-c', String(GEN_CPU), 'iperf3', '-s', '-1', '-B', dstIp]);
  try {
    await new Promise((res) => setTimeout(res, 500));
    const r = await n.exec('a', ['taskset', '-c', String(GEN_CPU), 'iperf3', '-c', dstIp, '-t', String(seconds), '-J'], (seconds + 30) * 1000);
    if (r.code !== 0) throw new Error(`iperf3 failed: ${r.stdout.slice(0, 300)} ${r.stderr.trim()}`);
    const j = JSON.parse(r.stdout) as { end: { sum_received: { bits_per_second: number } } };
    return Number((j.end.sum_received.bits_per_second / 1e9).toFixed(2));
  } finally {
    await n.stop(srv);
  }
}

const macOf = async (n: Netns, role: string, ifn: string) => (await n.sh(role, `cat /sys/class/net/${ifn}/address`)).trim();

async function forwarderVariant(kind: PortKind, haveIperf: boolean, rps: 'none' | 'path' = 'none', rates: number[] = [0], extraArgs: string[] = []): Promise<Row[]> {
  const rows: Row[] = [];
  const label = `l2fwd ${kind}${extraArgs.length ? ' ' + extraArgs.join(' ') : ''}`;
  try {
    await withL2fwdLab({ io: kind, tag: 'bio', burst: BURST, cpu: PATH_CPU, extraArgs }, async (lab) => {
      const n = lab.n;
      if (rps === 'path') for (const ifn of [lab.fwdIfs.a, 'fa']) await n.sh('f', `echo ${1 << PATH_CPU} > /sys/class/net/${ifn}/queues/rx-0/rps_cpus 2>/dev/null || true`);
      for (const rate of rates) {
        const s0 = await lab.fwdStats();
        const udp = await udpRun(n, SINK_MAC, '198.18.0.3', SECONDS, rate);
        const s1 = await lab.fwdStats();
        const frames = s1.aToB.frames - s0.aToB.frames;
        const bursts = s1.aToB.bursts - s0.aToB.bursts;
        rows.push({
          variant: `${label}${rps === 'path' ? ' +RPS on fwd core' : ''}${rate ? ` @${rate / 1000}k` : ''}`,
          burst: BURST,
          udp,
          fwd: { avgBatchAtoB: bursts ? Number((frames / bursts).toFixed(1)) : 0, gsoFramesAtoB: 0, rxDropped: s1.a.rxDropped - s0.a.rxDropped },
        });
      }
      if (haveIperf && rps === 'none' && rates.length === 1) {
        const s0: L2fwdStats = await lab.fwdStats();
        const gbps = await tcpRun(n, '198.18.0.2', SECONDS);
        const s1 = await lab.fwdStats();
        const row = rows[rows.length - 1];
        row.tcpGbps = gbps;
        row.fwd!.gsoFramesAtoB = s1.aToB.gsoFrames - s0.aToB.gsoFrames;
      }
    });
  } catch (e) {
    rows.push({ variant: label, burst: BURST, error: (e as Error).message.slice(0, 300) });
  }
  return rows;
}

async function kernelVariant(mode: 'bridge' | 'forward', haveIperf: boolean, rps: boolean): Promise<Row> {
  const row: Row = { variant: `${mode === 'bridge' ? 'kernel bridge' : 'kernel IP forwarding'}${rps ? ' +RPS on path core' : ''}`, burst: null };
  try {
    await withNetns('bik', async (n) => {
      for (const r of ['a', 'b', 'f']) await n.add(r);
      await n.veth('a', 'va', 'f', 'fa');
      await n.veth('b', 'vb', 'f', 'fb');
      let dstMac: string;
      let dstIp: string;
      if (mode === 'bridge') {
        await n.ip('a', 'addr', 'add', '198.18.0.1/24', 'dev', 'va');
        await n.ip('b', 'addr', 'add', '198.18.0.2/24', 'dev', 'vb');
        await n.sh('f', 'ip link add br0 type bridge stp_state 0 forward_delay 0 && ip link set fa master br0 && ip link set fb master br0 && ip link set br0 up');
        dstMac = SINK_MAC;
        dstIp = '198.18.0.3';
        await n.exec('a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', '198.18.0.2']);
      } else {
        await n.ip('a', 'addr', 'add', '198.18.0.1/24', 'dev', 'va');
        await n.ip('a', 'route', 'add', 'default', 'via', '198.18.0.254');
        await n.ip('f', 'addr', 'add', '198.18.0.254/24', 'dev', 'fa');
        await n.ip('f', 'addr', 'add', '198.18.1.254/24', 'dev', 'fb');
        await n.ip('b', 'addr', 'add', '198.18.1.2/24', 'dev', 'vb');
        await n.ip('b', 'route', 'add', 'default', 'via', '198.18.1.254');
        await n.sh('f', 'sysctl -qw net.ipv4.ip_forward=1');
        await n.ip('f', 'neigh', 'add', '198.18.1.3', 'lladdr', SINK_MAC, 'dev', 'fb');
        dstMac = await macOf(n, 'f', 'fa');
        dstIp = '198.18.1.3';
        await n.exec('a', ['ping', '-c', '2', '-i', '0.2', '-W', '2', '198.18.1.2']);
      }
      // With RPS on F's veths the kernel's whole forwarding work runs on the path core, as a NIC whose
      // IRQs are pinned there would make it; without, it runs in the sender's context (CPU0).
      if (rps) for (const ifn of ['fa', 'fb']) await n.sh('f', `echo ${1 << PATH_CPU} > /sys/class/net/${ifn}/queues/rx-0/rps_cpus`);
      row.udp = await udpRun(n, dstMac, dstIp, SECONDS);
      if (haveIperf) row.tcpGbps = await tcpRun(n, mode === 'bridge' ? '198.18.0.2' : '198.18.1.2', SECONDS);
    });
  } catch (e) {
    row.error = (e as Error).message.slice(0, 300);
  }
  return row;
}

function table(rows: Row[]): string {
  const head = ['variant', 'burst', 'UDP offered pps', 'UDP delivered pps', 'path core busy', 'avg batch', 'ring drops', 'TCP Gbps', 'GSO frames'];
  const lines = rows.map((r) => [
    r.variant,
    r.burst ?? '-',
    r.udp?.offeredPps ?? '-',
    r.udp?.deliveredPps ?? (r.error ? `error: ${r.error}` : '-'),
    r.udp ? `${Math.round(r.udp.pathCpuBusy * 100)}%` : '-',
    r.fwd?.avgBatchAtoB ?? '-',
    r.fwd?.rxDropped ?? '-',
    r.tcpGbps ?? '-',
    r.fwd?.gsoFramesAtoB ?? '-',
  ].map(String));
  const w = head.map((h, i) => Math.max(h.length, ...lines.map((l) => Math.min(l[i].length, 60))));
  return [head, ...lines].map((l) => l.map((c, i) => c.slice(0, 60).padEnd(w[i])).join('  ')).join('\n');
}

async function main(): Promise<void> {
  if (!canUseNetns()) {
    console.error('bench/io.ts needs root (network namespaces, AF_PACKET)');
    process.exit(1);
  }
  const haveIperf = await ensureIperf3();
  const rows: Row[] = [];
  const kinds = values.kinds ? (values.kinds.split(',') as PortKind[]) : OPENABLE_KINDS;
  for (const kind of kinds) rows.push(...(await forwarderVariant(kind, haveIperf)));
  rows.push(...(await forwarderVariant('afpacket', haveIperf, 'none', [0], ['--tx-ring'])));
  if (!values.quick) {
    for (const rps of [false, true]) {
      rows.push(await kernelVariant('bridge', haveIperf, rps));
      rows.push(await kernelVariant('forward', haveIperf, rps));
    }
  }
  if (values.overload) {
    const rates = [100_000, 200_000, 300_000, 400_000, 0];
    rows.push(...(await forwarderVariant('afpacket', false, 'none', rates)));
    rows.push(...(await forwarderVariant('afpacket', false, 'path', rates)));
  }
  const result = { date: new Date().toISOString(), kernel: (await run('uname', ['-r'])).stdout.trim(), cpus: cpuTimes().length, seconds: SECONDS, node: process.version, rows };
  mkdirSync(`${ROOT}bench/results`, { recursive: true });
  writeFileSync(`${ROOT}bench/results/io-latest.json`, JSON.stringify(result, null, 2) + '\n');
  console.log(table(rows));
  console.log(`\nwritten: bench/results/io-latest.json (${SECONDS} s per run; generator and TCP endpoints on CPU${GEN_CPU}, path under test on CPU${PATH_CPU})`);
}

await main();
