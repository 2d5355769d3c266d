// `npm run demo`: the forwarder self-demo — real traffic through tsvs's packet-I/O layer between namespaces.
//
// Builds namespaces A and B joined through F, where the TypeScript L2 forwarder (src/cli/l2fwd.ts) owns
// both F-side veths through AF_PACKET ports; sends real ping and TCP transfers through it, checks every
// byte by sha256, repeats with checksum completion forced on the forwarder's egress, explains what
// happened, and tears everything down. Exits non-zero when any check fails. Needs root.
import { canUseNetns } from '../lab/netns.ts';
import { IoError } from '../io/errors.ts';
import { native } from '../io/native.ts';
import type { DirStats } from '../io/l2fwd.ts';
import { ADDR, withL2fwdLab, type L2fwdLab } from '../lab/l2fwd-lab.ts';

const MB = 1 << 20;
const BYTES = 20 * MB;
let failures = 0;

function check(ok: boolean, what: string): void {
  console.log(`  ${ok ? 'ok  ' : 'FAIL'}  ${what}`);
  if (!ok) failures++;
}

function dir(name: string, d: DirStats): string {
  const avg = d.frames ? Math.round(d.bytes / d.frames) : 0;
  return `    ${name}: ${d.frames} frames (${(d.bytes / MB).toFixed(1)} MB, avg ${avg} B, largest ${d.maxFrame} B), ` +
    `${d.gsoFrames} GSO, ${d.csumPartialFrames} with partial checksum, avg batch ${d.bursts ? (d.frames / d.bursts).toFixed(1) : 0}, ${d.txDropped} refused`;
}

async function traffic(lab: L2fwdLab): Promise<void> {
  for (const side of ['a', 'b'] as const) {
    const p = await lab.ping(side, 3);
    check(p.sent > 0 && p.received === p.sent, `ping ${side.toUpperCase()} -> ${side === 'a' ? 'B' : 'A'}: ${p.received}/${p.sent} replies`);
  }
  for (const side of ['a', 'b'] as const) {
    const t0 = Date.now();
    const r = await lab.tcpTransfer(side, BYTES);
    const secs = (Date.now() - t0) / 1000;
    check(
      r.recvBytes === r.bytes && r.recvSha === r.sentSha,
      `TCP ${side.toUpperCase()} -> ${side === 'a' ? 'B' : 'A'}: ${r.recvBytes / MB} MB received in ${secs.toFixed(1)} s, sha256 ${r.recvSha.slice(0, 16)}… ${r.recvSha === r.sentSha ? 'matches' : 'DIFFERS from'} the sender's`,
    );
  }
}

async function round(txOff: boolean): Promise<void> {
  await withL2fwdLab({ io: 'afpacket', tag: txOff ? 'demox' : 'demo', txOff }, async (lab) => {
    const ns = (r: string) => lab.n.ns(r);
    console.log(`  namespaces ${ns('a')}, ${ns('f')}, ${ns('b')}; forwarder pid ${String(lab.ready.pid)} owns fa and fb in F`);
    const before = { a: await lab.csumErrors('a'), b: await lab.csumErrors('b') };
    await traffic(lab);
    const s = await lab.stopForwarder();
    if (!s) throw new Error('forwarder gave no final stats');
    const errs = { a: (await lab.csumErrors('a')) - before.a, b: (await lab.csumErrors('b')) - before.b };
    check(errs.a === 0 && errs.b === 0, `TcpInCsumErrors: A +${errs.a}, B +${errs.b} (receivers verified every checksum they had to)`);
    console.log('  what the forwarder saw:');
    console.log(dir('A -> B', s.aToB));
    console.log(dir('B -> A', s.bToA));
    console.log(`    kernel ring drops: fa ${s.a.rxDropped}, fb ${s.b.rxDropped}`);
    const gso = s.aToB.gsoFrames + s.bToA.gsoFrames;
    if (!txOff) {
      check(gso > 0, `large segments crossed whole: ${gso} GSO frames, up to ${Math.max(s.aToB.maxFrame, s.bToA.maxFrame)} bytes each`);
      console.log('  Why: the veths keep TSO and checksum offload on, so TCP hands over segments of up to 64 KB with');
      console.log('  a partial checksum. The AF_PACKET ports read them with their virtio_net_hdr (PACKET_VNET_HDR),');
      console.log('  the forwarder passes header and frame through untouched, and the kernel on the other side');
      console.log('  segments (or not) and finishes the checksum as the header asks.');
    } else {
      console.log('  Why: `ethtool -K fa/fb tx off` makes F\'s veths complete every checksum and segment in software.');
      console.log('  A frame whose vnet header lost its NEEDS_CSUM flag or offsets would reach A or B with a wrong');
      console.log('  checksum and show up in TcpInCsumErrors; none did. GSO frames went through the ports\' qdisc');
      console.log('  socket, since a qdisc-bypass send drops frames the device must segment in software.');
    }
  });
}

async function main(): Promise<void> {
  if (!canUseNetns()) {
    console.error('npm run demo needs root: it builds network namespaces and opens AF_PACKET sockets.');
    process.exit(1);
  }
  try {
    native();
  } catch (e) {
    console.error(e instanceof IoError ? e.message : String(e));
    process.exit(1);
  }
  const t0 = Date.now();
  console.log('tsvs forwarder self-demo: the packet-I/O layer moving real traffic');
  console.log(`  A ${ADDR.a} [va] ── veth ── [fa] F: L2 forwarder (TypeScript, AF_PACKET ports) [fb] ── veth ── [vb] ${ADDR.b} B`);
  console.log('  F\'s veths carry no IP address: every frame between A and B crosses the forwarder\'s rxBurst/txBurst.\n');
  console.log('1) veth offloads at their defaults');
  await round(false);
  console.log('\n2) checksum completion forced on the forwarder\'s egress (ethtool -K fa/fb tx off)');
  await round(true);
  console.log(`\n${failures === 0 ? 'PASS' : `FAIL (${failures} checks)`}: namespaces removed; took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
  process.exit(failures === 0 ? 0 : 1);
}

main().catch((e: unknown) => {
  console.error(`demo failed: ${(e as Error).message}`);
  process.exit(1);
});
