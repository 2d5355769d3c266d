// Runs inside a namespace with an AF_PACKET port on an IPv6-less veth: speaks IPv6 to the Linux kernel on the
// other end with src/packet's builders, parsers and rewriters, and prints what came back as one JSON line.
import { AfPacketPort } from '../../src/io/afpacket.ts';
import {
  ICMP6,
  IcmpInner6,
  NdMessage,
  PARSE,
  PF6,
  ParsedFrame6,
  Verdict,
  buildNeighborSolicit,
  buildPacketTooBig,
  buildUnsolicitedNeighborAdvert,
  frameSetDaddr6,
  setDaddr6,
  ipv6ToString,
  macToString,
  parseFrame6,
  parseIcmp6Inner,
  l4PartialSeed6,
  parseNdisc,
} from '../../src/packet/index.ts';
import { PacketBuilder, ip6w, type BuiltFrame } from '../packet/builder.ts';

const [ifname, kernelAddr, myAddr, kernelMac, newMac] = process.argv.slice(2) as [string, string, string, string, string];
const port = new AfPacketPort(ifname);
const SLOTS = 16;
const slot = port.maxFrame;
const rx = new Uint8Array(SLOTS * slot);
const rxOffs = Uint32Array.from({ length: SLOTS }, (_, i) => i * slot);
const rxLens = new Uint32Array(SLOTS);
const tx = new Uint8Array(4096);
const one = new Uint32Array(1);
const oneLen = new Uint32Array(1);
const myMac = macToString(port.mac, 0);
const p = new ParsedFrame6();

function send(buf: Uint8Array, off: number, len: number): void {
  tx.set(buf.subarray(off, off + len), 0);
  one[0] = 0;
  oneLen[0] = len;
  if (port.txBurst(tx, one, oneLen, 1) !== 1) throw new Error('txBurst sent nothing');
}
const sendBuilt = (f: BuiltFrame) => send(f.buf, f.off, f.len);

/** Receives until `pred` accepts a parsed IPv6 frame, or `ms` pass; returns a copy of it. */
function receive(pred: (q: ParsedFrame6, buf: Uint8Array) => boolean, ms = 3000): { buf: Uint8Array; len: number } | null {
  const until = Date.now() + ms;
  while (Date.now() < until) {
    port.wait(50);
    for (let i = 0; i < SLOTS; i++) rxOffs[i] = i * slot;
    const n = port.rxBurst(rx, rxOffs, rxLens, SLOTS);
    for (let i = 0; i < n; i++) {
      const off = rxOffs[i]!;
      const len = rxLens[i]!;
      if (parseFrame6(rx, off, len, p, PARSE.VERIFY_L4) !== Verdict.OK) continue;
      if (pred(p, rx)) {
        const copy = rx.slice(off, off + len);
        parseFrame6(copy, 0, len, p, PARSE.VERIFY_L4);
        return { buf: copy, len };
      }
    }
  }
  return null;
}

const out: Record<string, unknown> = { myMac };
const eth = { dst: kernelMac, src: myMac };

// A. Neighbour solicitation for the kernel's address; its advertisement must pass parseNdisc.
{
  const f = new Uint8Array(200);
  const n = buildNeighborSolicit(f, 0, port.mac, 0, ip6w(myAddr), 0, ip6w(kernelAddr), 0);
  send(f, 0, n);
  const nd = new NdMessage();
  const got = receive((q, b) => q.icmpType === ICMP6.NEIGH_ADVERT && parseNdisc(b, q, nd) && ipv6ToString(nd.target) === kernelAddr);
  out.na = got && { verified: (p.flags & PF6.L4_VERIFIED) !== 0, flags: nd.flags, lladdr: nd.lladdr >= 0 ? macToString(got.buf, nd.lladdr) : null, to: ipv6ToString(p.daddr) };
}

// B. Echo: the kernel accepts the builder's ICMPv6 checksum and its reply verifies here.
{
  sendBuilt(new PacketBuilder().eth(eth).ipv6({ src: myAddr, dst: kernelAddr }).icmp6({ type: 128, rest: (0x4242 << 16) | 1 }).payload([1, 2, 3, 4, 5, 6, 7, 8]).build());
  const got = receive((q) => q.icmpType === ICMP6.ECHO_REPLY && q.icmpId === 0x4242);
  out.echo = got && { verified: (p.flags & PF6.L4_VERIFIED) !== 0, from: ipv6ToString(p.saddr), len: p.payloadLen };
}

// C. A TCP SYN behind hop-by-hop and destination options, addressed elsewhere and NAT-rewritten to the
//    kernel's address with the incremental checksum: the kernel answers RST only if that checksum is right.
{
  const f = new PacketBuilder().eth(eth).ipv6({ src: myAddr, dst: '2001:db8:ffff::99', ext: [{ type: 'hop' }, { type: 'dest' }] }).tcp({ sport: 40123, dport: 9, flags: 0x02 }).build();
  const q = new ParsedFrame6();
  parseFrame6(f.buf, f.off, f.len, q, PARSE.VERIFY_L4);
  frameSetDaddr6(f.buf, q, ip6w(kernelAddr), 0);
  sendBuilt(f);
  const got = receive((r) => r.proto === 6 && r.sport === 9 && r.dport === 40123);
  // The kernel's own TCP leaves with a partial checksum over veth: then its seed must be ours.
  const seedOk = got !== null && (p.flags & PF6.CSUM_PARTIAL) !== 0 && ((got.buf[p.l4 + 16]! << 8) | got.buf[p.l4 + 17]!) === l4PartialSeed6(got.buf, p.l3, p.l4, p.ipEnd, 6);
  out.rst = got && { checked: (p.flags & PF6.L4_VERIFIED) !== 0 || seedOk, flags: p.tcpFlags };
}

// C'. The same with a partial checksum (NEEDS_CSUM): the seed is rewritten by the partial rule and the
//     kernel completes it on the way out (the test turns xd's tx checksum offload off), so the kernel on
//     the other side verifies what the rule produced. The complete-checksum formula applied to the seed
//     instead must get no answer: the check can fail.
{
  const syn = (sport: number) => {
    const f = new PacketBuilder().eth(eth).ipv6({ src: myAddr, dst: '2001:db8:ffff::98', ext: [{ type: 'dest' }] }).tcp({ sport, dport: 9, flags: 0x02 }).partialChecksum().build();
    const q = new ParsedFrame6();
    parseFrame6(f.buf, f.off, f.len, q, 0);
    return { f, q };
  };
  const wrong = syn(40125);
  setDaddr6(wrong.f.buf, wrong.q.l3, wrong.q.l4, 6, ip6w(kernelAddr), 0, false);
  sendBuilt(wrong.f);
  out.partialWrong = receive((r) => r.proto === 6 && r.sport === 9 && r.dport === 40125, 700) !== null;
  const right = syn(40126);
  out.partialIn = (right.q.flags & PF6.CSUM_PARTIAL) !== 0;
  frameSetDaddr6(right.f.buf, right.q, ip6w(kernelAddr), 0);
  sendBuilt(right.f);
  out.partialRst = receive((r) => r.proto === 6 && r.sport === 9 && r.dport === 40126) !== null;
}

// D. UDP to a closed port: the kernel's port unreachable, its embedded datagram read by parseIcmp6Inner.
{
  sendBuilt(new PacketBuilder().eth(eth).ipv6({ src: myAddr, dst: kernelAddr }).udp({ sport: 40124, dport: 9 }).payload([9, 9, 9]).build());
  const ii = new IcmpInner6();
  const got = receive((q, b) => q.icmpType === ICMP6.DEST_UNREACH && parseIcmp6Inner(b, q, ii) && ii.sport === 40124);
  out.unreach = got && { code: p.icmpCode, innerSrc: ipv6ToString(ii.saddr), innerDst: ipv6ToString(ii.daddr), sport: ii.sport, dport: ii.dport, proto: ii.proto };
}

// E. A large echo reply, then Packet Too Big about it: the kernel lowers its path MTU towards us.
{
  sendBuilt(new PacketBuilder().eth(eth).ipv6({ src: myAddr, dst: kernelAddr }).icmp6({ type: 128, rest: (0x4343 << 16) | 2 }).payload(new Array(1400).fill(0x61)).build());
  const got = receive((q) => q.icmpType === ICMP6.ECHO_REPLY && q.icmpId === 0x4343);
  out.bigEcho = got && { len: p.payloadLen };
  if (got) {
    const f = new Uint8Array(2048);
    const n = buildPacketTooBig(f, 0, got.buf, p.l3, p.ipEnd, 1300, ip6w(myAddr), 0, got.buf, p.eth + 6, port.mac, 0);
    out.ptbLen = n;
    send(f, 0, n);
  }
}

// F. An unsolicited NA moving our address to another MAC: the kernel's neighbour entry follows (O set).
{
  const f = new Uint8Array(200);
  const m = Uint8Array.from(newMac.split(':').map((h) => parseInt(h, 16)));
  const n = buildUnsolicitedNeighborAdvert(f, 0, m, 0, ip6w(myAddr), 0);
  // The frame leaves from this port's MAC; the option names the new one.
  f.set(port.mac, 10 + 6);
  send(f, 0, n);
  out.unsolicitedNa = n;
}

port.close();
console.log(JSON.stringify(out));
