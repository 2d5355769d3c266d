// Differential golden tests: the TS path's forwarding fixtures run again through the tcx program (and its socket filter) with BPF_PROG_TEST_RUN.
//
// For each fixture the TS path (a Dataplane over memory ports) forwards the frame; a map entry is built
// from what it decided (the rewritten addresses and ports, the MACs it wrote, the outer header), and the
// program, run on the same input frame, must give the same bytes, or punt where the fast path by
// design does not act. What BPF_PROG_TEST_RUN cannot reproduce is said where it matters: its skb is
// built from flat bytes, CHECKSUM_NONE, no GSO type (see docs/fastpath.md, "Testing").
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { PacketBuilder, ip, mac, refSum } from '../packet/builder.ts';
import { LAN_MAC, NAT_MAC, ROUTER_MAC, RS_MAC, setup, bytesOf, eth, u16, u32, entryFromTs, hex } from './harness.ts';
import { BpfHashMap, loadProgram, testRun, closeFd, BPF_PROG_TYPE_SCHED_CLS, BPF_PROG_TYPE_SOCKET_FILTER } from '../../src/fastpath/bpf.ts';
import { buildSockFilter } from '../../src/fastpath/sock-filter.ts';
import { buildTcProgram, TC_ACT, SKB } from '../../src/fastpath/tc-prog.ts';
import { KEY, VALUE, METHOD, encodeKey, encodeValue, decodeCounters, type FastEntry, type Method } from '../../src/fastpath/layout.ts';

const PUNT = TC_ACT.OK;

function probe(): string | false {
  if (process.getuid?.() !== 0) return 'needs root (BPF_PROG_TEST_RUN)';
  try {
    const m = new BpfHashMap(KEY.SIZE, VALUE.SIZE, 16, 'tsvs_probe');
    try {
      closeFd(loadProgram(BPF_PROG_TYPE_SCHED_CLS, buildTcProgram({ mapFd: m.fd, mac: mac(LAN_MAC), punt: PUNT }), 'tsvs_probe'));
    } finally {
      m.close();
    }
    return false;
  } catch (e) {
    return `the kernel refuses the program: ${(e as Error).message.slice(0, 200)}`;
  }
}
const skip = probe();

/** One map and one program per interface MAC, as tsvsd would load them. */
class Fast {
  readonly map = new BpfHashMap(KEY.SIZE, VALUE.SIZE, 1024, 'tsvs_fast_t');
  private readonly progs = new Map<string, number>();
  prog(ifmac: string): number {
    let fd = this.progs.get(ifmac);
    if (fd === undefined) {
      fd = loadProgram(BPF_PROG_TYPE_SCHED_CLS, buildTcProgram({ mapFd: this.map.fd, mac: mac(ifmac), punt: PUNT }), 'tsvs_fast_t');
      this.progs.set(ifmac, fd);
    }
    return fd;
  }
  private readonly filters = new Map<string, number>();
  /** The socket filter of that interface (sock-filter.ts). */
  filter(ifmac: string): number {
    let fd = this.filters.get(ifmac);
    if (fd === undefined) {
      fd = loadProgram(BPF_PROG_TYPE_SOCKET_FILTER, buildSockFilter({ mapFd: this.map.fd, mac: mac(ifmac) }), 'tsvs_sockf_t');
      this.filters.set(ifmac, fd);
    }
    return fd;
  }
  /**
   * Runs the tcx program on `frame`, after the socket filter, which must refuse it exactly when the tcx
   * program redirects it (a refused frame the program then punted would be lost). A test run of a
   * socket filter starts its skb at the network header (it pulls 14 bytes, where a packet socket's
   * filter sees the Ethernet header at 0), so the frame goes in behind 14 bytes that stand for that.
   * With a ctx (GSO) the check is skipped: a test run cannot give the skb its gso_type (see the TUN GSO test).
   */
  run(ifmac: string, frame: Uint8Array, ctx: Uint8Array | null = null): ReturnType<typeof testRun> {
    const pre = new Uint8Array(14 + frame.length);
    pre.set(frame, 14);
    const refused = testRun(this.filter(ifmac), pre, ctx).retval === 0;
    const r = testRun(this.prog(ifmac), frame, ctx);
    if (ctx === null) assert.equal(refused, r.retval === TC_ACT.REDIRECT, `socket filter ${refused ? 'refused' : 'accepted'} a frame the tcx program ${r.retval === TC_ACT.REDIRECT ? 'carried' : 'punted'}`);
    return r;
  }
  close(): void {
    for (const fd of [...this.progs.values(), ...this.filters.values()]) closeFd(fd);
    this.map.close();
  }
}

const keyBuf = new Uint8Array(KEY.SIZE);
const valBuf = new Uint8Array(VALUE.SIZE);
/** Installs the entry keyed by the input frame's own 5-tuple. */
function install(fast: Fast, input: Uint8Array, e: FastEntry): Uint8Array {
  const key = encodeKey(new Uint8Array(KEY.SIZE), input[23]!, u32(input, 26), u32(input, 30), u16(input, 34), u16(input, 36));
  assert.equal(fast.map.update(key, encodeValue(valBuf, e)), 0);
  return key;
}

function ctxWith(gsoSize: number, gsoSegs: number): Uint8Array {
  const c = new Uint8Array(SKB.SIZE);
  const dv = new DataView(c.buffer);
  dv.setUint32(SKB.GSO_SIZE, gsoSize, true);
  dv.setUint32(SKB.GSO_SEGS, gsoSegs, true);
  return c;
}


test('NAT in and out (TCP and UDP): the program writes the bytes the TS path writes, and counts', { skip }, () => {
  const fast = new Fast();
  try {
    for (const proto of ['tcp', 'udp'] as const) {
      const { lan, nat, ts } = setup('nat');
      const vport = proto === 'tcp' ? 80 : 53;
      const l4 = (b: PacketBuilder, sport: number, dport: number, flags: number) =>
        proto === 'tcp' ? b.tcp({ sport, dport, flags, seq: 77, ack: 5 }) : b.udp({ sport, dport });
      // First packet through the TS path only: it schedules and creates the conn (SYN / first datagram).
      ts(lan, bytesOf(l4(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100', ttl: 63 }), 40000, vport, 0x02)));
      // The fixture: an established-direction frame with payload.
      const inF = bytesOf(l4(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100', ttl: 63, tos: 0x10, df: true }), 40000, vport, 0x18).payload([1, 2, 3, 4, 5]));
      const tsOut = ts(lan, inF).nat;
      assert.equal(tsOut.length, 1);
      const want = eth(tsOut[0]!);
      const key = install(fast, eth(inF), entryFromTs(METHOD.NAT_IN, eth(inF), want));
      const r = fast.run(LAN_MAC, eth(inF));
      assert.equal(r.retval, TC_ACT.REDIRECT, `${proto} NAT in redirected`);
      assert.equal(hex(r.data), hex(want), `${proto} NAT in bytes`);
      assert.ok(fast.map.lookup(key, valBuf));
      const c = decodeCounters(valBuf);
      assert.equal(c.packets, 1);
      assert.equal(c.bytes, eth(inF).length - 14);
      assert.ok(c.lastSeenNs > 0n);
      // The reply: RIP:rport → CIP:cport, on the FORWARD path (TTL − 1).
      const rport = proto === 'tcp' ? 8080 : 5353;
      const back = bytesOf(l4(new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: '198.18.2.11', dst: '198.18.0.2', ttl: 64 }), rport, 40000, 0x10).payload([9, 8, 7]));
      const tsBack = ts(nat, back).lan;
      assert.equal(tsBack.length, 1);
      install(fast, eth(back), entryFromTs(METHOD.NAT_OUT, eth(back), eth(tsBack[0]!)));
      const rb = fast.run(NAT_MAC, eth(back));
      assert.equal(rb.retval, TC_ACT.REDIRECT, `${proto} NAT out redirected`);
      assert.equal(hex(rb.data), hex(eth(tsBack[0]!)), `${proto} NAT out bytes`);
    }
  } finally {
    fast.close();
  }
});

test('NAT UDP without a checksum (0) keeps it 0, as the TS path does', { skip }, () => {
  const fast = new Fast();
  try {
    const { lan, ts } = setup('nat');
    const f = (p: number[]) => bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).udp({ sport: 5000, dport: 53, zeroChecksum: true }).payload(p));
    ts(lan, f([0]));
    const inF = f([1, 2, 3]);
    const want = eth(ts(lan, inF).nat[0]!);
    assert.equal(u16(want, 40), 0);
    install(fast, eth(inF), entryFromTs(METHOD.NAT_IN, eth(inF), want));
    const r = fast.run(LAN_MAC, eth(inF));
    assert.equal(r.retval, TC_ACT.REDIRECT);
    assert.equal(hex(r.data), hex(want));
  } finally {
    fast.close();
  }
});

test('DR: only the MACs change, TTL kept', { skip }, () => {
  const fast = new Fast();
  try {
    const { lan, ts } = setup('dr');
    const f = (flags: number, p: number[]) => bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100', ttl: 60 }).tcp({ sport: 40001, dport: 80, flags }).payload(p));
    ts(lan, f(0x02, []));
    const inF = f(0x10, [7, 7]);
    const want = eth(ts(lan, inF).lan[0]!);
    install(fast, eth(inF), entryFromTs(METHOD.DR, eth(inF), want));
    const r = fast.run(LAN_MAC, eth(inF));
    assert.equal(r.retval, TC_ACT.REDIRECT);
    assert.equal(hex(r.data), hex(want));
  } finally {
    fast.close();
  }
});

/** TUN outputs equal but for the outer IP ID (a counter in either path) and so its header checksum, which must verify. */
function assertTunEqual(got: Uint8Array, want: Uint8Array, what: string): void {
  assert.equal(got.length, want.length, `${what}: length`);
  assert.equal(refSum(got, 14, 34), 0xffff, `${what}: outer header checksum verifies`);
  const g = got.slice();
  g[18] = want[18]!;
  g[19] = want[19]!;
  g[24] = want[24]!;
  g[25] = want[25]!;
  assert.equal(hex(g), hex(want), what);
}

test('TUN: the outer header DIP → RIP the TS path writes; too big with DF is punted (TS answers frag-needed)', { skip }, () => {
  const fast = new Fast();
  try {
    const { lan, ts } = setup('tun');
    const f = (p: number[], df = false) => bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100', df, tos: 0x28 }).udp({ sport: 5000, dport: 53 }).payload(p));
    ts(lan, f([0]));
    for (const df of [false, true]) {
      const inF = f([1, 2, 3, 4], df);
      const want = eth(ts(lan, inF).lan[0]!);
      assert.equal(want[23], 4, 'TS sent IPIP');
      install(fast, eth(inF), entryFromTs(METHOD.TUN, eth(inF), want));
      const r = fast.run(LAN_MAC, eth(inF));
      assert.equal(r.retval, TC_ACT.REDIRECT);
      assertTunEqual(r.data, want, `TUN df=${df}`);
    }
    // 1472 bytes of payload with DF: 1500 + 20 exceeds the MTU; the TS path sends fragmentation-needed.
    const big = f(new Array(1472).fill(9), true);
    const tsBig = ts(lan, big).lan;
    assert.equal(tsBig.length, 1);
    assert.equal(eth(tsBig[0]!)[23], 1, 'TS answered with ICMP');
    const r = fast.run(LAN_MAC, eth(big));
    assert.equal(r.retval, PUNT);
    assert.equal(hex(r.data), hex(eth(big)), 'punted frames are untouched');
  } finally {
    fast.close();
  }
});

test('TUN with a GSO skb in a test run: the ctx sets gso_size but not gso_type, so the encapsulation is refused and the frame punted untouched', { skip }, () => {
  // BPF_PROG_TEST_RUN builds its skb from flat bytes: __sk_buff gives gso_size and gso_segs, never
  // gso_type, and bpf_skb_adjust_room refuses a GSO skb that is not TCP (-ENOTSUPP). What a real TCP
  // GSO skb becomes is tested on veths (test/e2e/fastpath-veth.test.ts); here the program must punt
  // cleanly when the helper says no (nothing is changed before it).
  const fast = new Fast();
  try {
    const { lan, ts } = setup('tun', 70_000);
    const gsoSize = 1000;
    const payload = Array.from({ length: 3 * gsoSize }, (_, i) => (i * 7) & 0xff);
    const mk = (flags: number, p: number[], gso: boolean) => {
      const b = new PacketBuilder();
      if (gso) b.vnet({ gsoType: 1, gsoSize, hdrLen: 54 });
      return bytesOf(b.eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100', df: true }).tcp({ sport: 40000, dport: 80, flags }).payload(p).partialChecksum());
    };
    ts(lan, mk(0x02, [], false));
    const inF = mk(0x10, payload, true);
    const segs = ts(lan, inF).lan.map(eth);
    assert.equal(segs.length, 3, 'the TS path cut 3 segments');
    install(fast, eth(inF), entryFromTs(METHOD.TUN, eth(inF), segs[0]!));
    for (const size of [gsoSize, 1460]) {
      const r = fast.run(LAN_MAC, eth(inF), ctxWith(size, 3));
      assert.equal(r.retval, PUNT, `gso_size ${size}`);
      assert.equal(hex(r.data), hex(eth(inF)), 'untouched');
    }
    assert.ok(fast.map.lookup(encodeKey(keyBuf, 6, ip('198.18.0.2'), ip('198.18.1.100'), 40000, 80), valBuf));
    assert.equal(decodeCounters(valBuf).packets, 0, 'a punted frame is not counted');
  } finally {
    fast.close();
  }
});

test('punted by design: SYN/FIN/RST, IP options, fragments, ICMP, ARP, VLAN, no entry, another MAC, TTL ≤ 1 on FORWARD', { skip }, () => {
  const fast = new Fast();
  try {
    const base = () => new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC });
    const est = bytesOf(base().ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x10 }));
    const e: FastEntry = { method: METHOD.NAT_IN, forward: false, mtu: 1500, ifindex: 3, addr: ip('198.18.2.11'), port: 8080, dmac: mac(RS_MAC), smac: mac(NAT_MAC), tunSaddr: 0, tunDaddr: 0 };
    install(fast, eth(est), e);
    assert.equal(fast.run(LAN_MAC, eth(est)).retval, TC_ACT.REDIRECT, 'the established frame itself is carried');
    const punted: [string, Uint8Array][] = [
      ['SYN', bytesOf(base().ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x02 }))],
      ['FIN', bytesOf(base().ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x11 }))],
      ['RST', bytesOf(base().ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x14 }))],
      ['IP options', bytesOf(base().ipv4({ src: '198.18.0.2', dst: '198.18.1.100', options: [1, 1, 1, 1] }).tcp({ sport: 40000, dport: 80, flags: 0x10 }))],
      ['first fragment (MF)', bytesOf(base().ipv4({ src: '198.18.0.2', dst: '198.18.1.100', mf: true }).tcp({ sport: 40000, dport: 80, flags: 0x10 }))],
      ['later fragment', bytesOf(base().ipv4({ src: '198.18.0.2', dst: '198.18.1.100', fragOff: 8 }).tcp({ sport: 40000, dport: 80, flags: 0x10 }))],
      ['ICMP', bytesOf(base().ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).icmp({ type: 8 }).payload([0, 0, 0, 0]))],
      ['ARP', bytesOf(base().arp({ op: 1, sha: ROUTER_MAC, spa: '198.18.1.1', tpa: '198.18.1.100' }))],
      ['VLAN tag in the frame', bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC, vlan: 10 }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x10 }))],
      ['no entry (another client port)', bytesOf(base().ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40002, dport: 80, flags: 0x10 }))],
      ['another host\'s MAC', bytesOf(new PacketBuilder().eth({ dst: '02:00:00:00:99:99', src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x10 }))],
      ['broadcast MAC', bytesOf(new PacketBuilder().eth({ dst: 'ff:ff:ff:ff:ff:ff', src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x10 }))],
      ['truncated TCP header', eth(bytesOf(base().ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x10 }))).subarray(0, 50)],
    ];
    for (const [what, f] of punted) {
      const input = what === 'truncated TCP header' ? f : eth(f);
      const r = fast.run(LAN_MAC, input);
      assert.equal(r.retval, PUNT, what);
      assert.equal(hex(r.data), hex(input), `${what}: untouched`);
    }
    // TTL ≤ 1 on the FORWARD path: the TS path answers time-exceeded.
    const reply = (ttl: number) => eth(bytesOf(new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: '198.18.2.11', dst: '198.18.0.2', ttl }).tcp({ sport: 8080, dport: 40000, flags: 0x10 })));
    install(fast, reply(1), { ...e, method: METHOD.NAT_OUT, forward: true, addr: ip('198.18.1.100'), port: 80, dmac: mac(ROUTER_MAC), smac: mac(LAN_MAC) });
    assert.equal(fast.run(NAT_MAC, reply(1)).retval, PUNT, 'TTL 1');
    assert.equal(fast.run(NAT_MAC, reply(0)).retval, PUNT, 'TTL 0');
    assert.equal(fast.run(NAT_MAC, reply(2)).retval, TC_ACT.REDIRECT, 'TTL 2');
    // An entry with an unknown method or flag is not acted on.
    install(fast, eth(est), { ...e, method: 9 as Method });
    assert.equal(fast.run(LAN_MAC, eth(est)).retval, PUNT, 'unknown method');
  } finally {
    fast.close();
  }
});

test('property: generated NAT/DR frames never make the program and the TS path disagree', { skip, timeout: 120_000 }, () => {
  const fast = new Fast();
  try {
    const envs = { nat: setup('nat'), dr: setup('dr') };
    let n = 0;
    fc.assert(
      fc.property(
        fc.record({
          method: fc.constantFrom('nat-in' as const, 'nat-out' as const, 'dr' as const),
          udp: fc.boolean(),
          cip: fc.integer({ min: 0, max: 0xffff }),
          cport: fc.integer({ min: 1, max: 0xffff }),
          ttl: fc.integer({ min: 0, max: 255 }),
          tos: fc.integer({ min: 0, max: 255 }),
          id: fc.integer({ min: 0, max: 0xffff }),
          df: fc.boolean(),
          flags: fc.integer({ min: 0, max: 0xff }),
          seq: fc.integer({ min: 0, max: 0xffffffff }),
          zeroUdp: fc.boolean(),
          payload: fc.uint8Array({ maxLength: 64 }),
        }),
        (g) => {
          const env = g.method === 'dr' ? envs.dr : envs.nat;
          // Clients spread over 198.18.128.0/17 (routed through the gateway), ports any.
          const cip = `198.18.${128 + (g.cip >> 9)}.${(g.cip & 0xff) || 1}`;
          const vport = g.udp ? 53 : 80;
          const l4 = (b: PacketBuilder, sport: number, dport: number, flags: number) =>
            g.udp ? b.udp({ sport, dport, zeroChecksum: g.zeroUdp }) : b.tcp({ sport, dport, flags, seq: g.seq });
          // The conn, made by the TS path from a first packet.
          env.ts(env.lan, bytesOf(l4(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: cip, dst: '198.18.1.100' }), g.cport, vport, 0x02)));
          let inPort = env.lan;
          let ifmac = LAN_MAC;
          let b: PacketBuilder;
          if (g.method === 'nat-out') {
            inPort = env.nat;
            ifmac = NAT_MAC;
            b = l4(new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: '198.18.2.11', dst: cip, ttl: g.ttl, tos: g.tos, id: g.id, df: g.df }), g.udp ? 5353 : 8080, g.cport, g.flags);
          } else {
            b = l4(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: cip, dst: '198.18.1.100', ttl: g.ttl, tos: g.tos, id: g.id, df: g.df }), g.cport, vport, g.flags);
          }
          const inF = bytesOf(b.payload(g.payload));
          const out = env.ts(inPort, inF);
          const sent = [...out.lan, ...out.nat].map(eth);
          const method = g.method === 'nat-in' ? METHOD.NAT_IN : g.method === 'nat-out' ? METHOD.NAT_OUT : METHOD.DR;
          // The entry is what the TS path decides for an established frame of this conn (a plain ACK).
          const probeF = bytesOf(l4(new PacketBuilder().eth({ dst: ifmac, src: g.method === 'nat-out' ? RS_MAC : ROUTER_MAC }).ipv4(g.method === 'nat-out' ? { src: '198.18.2.11', dst: cip } : { src: cip, dst: '198.18.1.100' }), g.method === 'nat-out' ? (g.udp ? 5353 : 8080) : g.cport, g.method === 'nat-out' ? g.cport : vport, 0x10));
          const probeOut = env.ts(inPort, probeF);
          const decided = [...probeOut.lan, ...probeOut.nat].map(eth);
          if (decided.length !== 1) return;
          const key = install(fast, eth(inF), entryFromTs(method, eth(probeF), decided[0]!));
          const r = fast.run(ifmac, eth(inF));
          fast.map.delete(key);
          if (r.retval === PUNT) {
            assert.equal(hex(r.data), hex(eth(inF)), 'punted frames are untouched');
            return;
          }
          n++;
          assert.equal(r.retval, TC_ACT.REDIRECT);
          assert.equal(sent.length, 1, `the program forwarded what the TS path did not: ${JSON.stringify(g)}`);
          assert.equal(hex(r.data), hex(sent[0]!), JSON.stringify(g));
        },
      ),
      { numRuns: 400 },
    );
    assert.ok(n > 100, `only ${n} generated frames were carried by the program`);
  } finally {
    fast.close();
  }
});

test('malformed frames the TS path drops are punted, not carried: bad IP checksum, total length beyond the frame or short of the headers, TCP data offset, UDP length', { skip }, () => {
  const fast = new Fast();
  try {
    const env = setup('nat');
    const frame = (udp: boolean) => bytesOf((udp
      ? new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).udp({ sport: 40000, dport: 53 })
      : new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x10 })).payload([1, 2, 3, 4, 5, 6, 7, 8]));
    // The conns, and an entry for each flow, so only the malformation decides.
    env.ts(env.lan, bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).tcp({ sport: 40000, dport: 80, flags: 0x02 })));
    env.ts(env.lan, frame(true));
    const e: FastEntry = { method: METHOD.NAT_IN, forward: false, mtu: 1500, ifindex: 3, addr: ip('198.18.2.11'), port: 8080, dmac: mac(RS_MAC), smac: mac(NAT_MAC), tunSaddr: 0, tunDaddr: 0 };
    for (const udp of [false, true]) {
      install(fast, eth(frame(udp)), { ...e, port: udp ? 5353 : 8080 });
      assert.equal(fast.run(LAN_MAC, eth(frame(udp))).retval, TC_ACT.REDIRECT, `the well-formed ${udp ? 'UDP' : 'TCP'} frame is carried`);
    }
    // Frame offsets below are from the Ethernet header; bytesOf's frames have a 10-byte vnet header first.
    const V = 10;
    const ipCsum = (f: Uint8Array) => {
      f[V + 24] = 0;
      f[V + 25] = 0;
      let s = 0;
      for (let i = 0; i < 20; i += 2) s += (f[V + 14 + i]! << 8) | f[V + 15 + i]!;
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      f[V + 24] = (~s >> 8) & 0xff;
      f[V + 25] = ~s & 0xff;
    };
    const setTot = (f: Uint8Array, n: number) => {
      f[V + 16] = n >> 8;
      f[V + 17] = n & 0xff;
      ipCsum(f);
    };
    const cases: [string, boolean, (f: Uint8Array) => void][] = [
      ['IP header checksum wrong', false, (f) => { f[V + 25]! ^= 0x01; }],
      ['IP total length beyond the frame', false, (f) => setTot(f, f.length - V - 14 + 4)],
      ['IP total length shorter than IP + TCP headers', false, (f) => setTot(f, 39)],
      ['TCP data offset 4 words', false, (f) => { f[V + 46] = 0x40; }],
      ['TCP data offset beyond the datagram', false, (f) => { f[V + 46] = 0xf0; }],
      ['UDP length below its header', true, (f) => { f[V + 38] = 0; f[V + 39] = 7; }],
      ['UDP length beyond the datagram', true, (f) => { f[V + 38] = 0; f[V + 39] = 8 + 8 + 1; }],
      ['IP total length shorter than IP + UDP headers', true, (f) => setTot(f, 27)],
    ];
    for (const [what, udp, mutate] of cases) {
      const f = frame(udp);
      mutate(f);
      const o = env.ts(env.lan, f);
      assert.equal(o.lan.length + o.nat.length, 0, `${what}: the TS path drops it`);
      const r = fast.run(LAN_MAC, eth(f));
      assert.equal(r.retval, PUNT, what);
      assert.equal(hex(r.data), hex(eth(f)), `${what}: untouched`);
    }
  } finally {
    fast.close();
  }
});
