// The tcx program on real skbs (veths in a namespace): partial checksums, GSO and bpf_redirect, which a test run cannot make.
//
// A packet socket with a vnet header sends each fixture into veth in1, so in0's tcx ingress sees the skb a
// local sender's stack would hand over (CHECKSUM_PARTIAL, GSO); the program redirects it out of out0 and
// a packet socket on out1 reads what arrived, vnet header included. The TS path forwards the same
// fixtures over memory ports; the two must agree (TUN: but for the outer IP ID and its checksum).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, withNetns, type Netns } from '../../src/lab/netns.ts';
import { moduleCommand } from '../../src/root.ts';
import { PacketBuilder, refSum } from '../packet/builder.ts';
import { LAN_MAC, NAT_MAC, ROUTER_MAC, RS_MAC, setup, bytesOf, eth, entryFromTs, hex } from '../fastpath/harness.ts';
import { METHOD, type Method } from '../../src/fastpath/layout.ts';

const skip = !canUseNetns() && 'needs root (network namespaces, tcx, AF_PACKET)';

interface Result {
  name: string;
  retFrames: string[];
  ringFrames: number;
  packets: number;
  bytes: number;
}

/** Runs the cases in the namespace's veth bed; returns what reached out1. */
async function runBed(n: Netns, cases: { name: string; frame: Uint8Array; method: Method; decided: Uint8Array | null; expect: number }[]): Promise<Map<string, Result>> {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-fpv-'));
  try {
    const file = join(dir, 'cases.json');
    writeFileSync(
      file,
      JSON.stringify(
        cases.map((c) => {
          // The program is on in0 (LAN_MAC): every fixture is addressed to it.
          const f = c.frame.slice();
          f.set(Buffer.from(LAN_MAC.replace(/:/g, ''), 'hex'), 10);
          if (c.decided === null) return { name: c.name, frame: hex(f), expect: c.expect, entry: null };
          const e = entryFromTs(c.method, eth(f), c.decided, 1500);
          return { name: c.name, frame: hex(f), expect: c.expect, entry: { ...e, dmac: hex(e.dmac), smac: hex(e.smac) } };
        }),
      ),
    );
    const r = await n.exec('fp', [...moduleCommand(import.meta.url, './fastpath-veth-main'), file], 60_000);
    assert.equal(r.code, 0, r.stderr);
    const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as Result[];
    return new Map(res.map((x) => [x.name, x]));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const vnetOf = (f: Uint8Array) => ({
  needsCsum: f[0]! & 1,
  gsoType: f[1]!,
  gsoSize: f[4]! | (f[5]! << 8),
  csumStart: f[6]! | (f[7]! << 8),
  csumOffset: f[8]! | (f[9]! << 8),
});
const fromHex = (h: string): Uint8Array => Uint8Array.from(Buffer.from(h, 'hex'));

test('fast path on veths: NAT and DR keep partial checksums and GSO as the TS path does; TUN GSO leaves as one encapsulated GSO skb; the ring sees only punted frames', { skip, timeout: 120_000 }, async () => {
  const gsoSize = 1000;
  const payload = Array.from({ length: 3 * gsoSize }, (_, i) => (i * 13) & 0xff);
  const tcp = (b: PacketBuilder, flags: number, p: number[], gso: boolean, src = '198.18.0.2', dst = '198.18.1.100', sport = 40000, dport = 80) => {
    if (gso) b.vnet({ gsoType: 1, gsoSize, hdrLen: 54 });
    return bytesOf(b.ipv4({ src, dst, df: true }).tcp({ sport, dport, flags, seq: 1000, ack: 1 }).payload(p).partialChecksum());
  };
  const cases: { name: string; frame: Uint8Array; method: Method; decided: Uint8Array | null; expect: number; want: Uint8Array[] }[] = [];
  // NAT in: partial TCP, and a TCP GSO frame; NAT out: a partial UDP reply.
  {
    const { lan, nat, ts } = setup('nat', 70_000);
    ts(lan, tcp(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }), 0x02, [], false));
    for (const [name, gso] of [['nat-in partial', false], ['nat-in gso', true]] as const) {
      const f = tcp(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }), 0x10, gso ? payload : [1, 2, 3], gso);
      const out = ts(lan, f).nat;
      assert.equal(out.length, 1, `${name}: TS forwarded one frame`);
      cases.push({ name, frame: f, method: METHOD.NAT_IN, decided: eth(out[0]!), expect: 1, want: out });
    }
    // Punted: a FIN of the same connection (its entry installed), and a frame of a flow with none.
    const fin = tcp(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }), 0x11, [], false);
    cases.push({ name: 'punt fin', frame: fin, method: METHOD.NAT_IN, decided: eth(cases[0]!.want[0]!), expect: 0, want: [] });
    const other = tcp(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }), 0x10, [1], false, '198.18.0.3');
    cases.push({ name: 'punt no entry', frame: other, method: METHOD.NAT_IN, decided: null, expect: 0, want: [] });
    ts(lan, bytesOf(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: '198.18.0.2', dst: '198.18.1.100' }).udp({ sport: 5000, dport: 53 }).payload([1])));
    const back = bytesOf(new PacketBuilder().eth({ dst: NAT_MAC, src: RS_MAC }).ipv4({ src: '198.18.2.11', dst: '198.18.0.2', ttl: 64 }).udp({ sport: 5353, dport: 5000 }).payload([4, 5, 6, 7]).partialChecksum());
    const out = ts(nat, back).lan;
    assert.equal(out.length, 1);
    cases.push({ name: 'nat-out udp partial', frame: back, method: METHOD.NAT_OUT, decided: eth(out[0]!), expect: 1, want: out });
  }
  {
    const { lan, ts } = setup('dr', 70_000);
    ts(lan, tcp(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }), 0x02, [], false));
    const f = tcp(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }), 0x10, payload, true);
    const out = ts(lan, f).lan;
    assert.equal(out.length, 1);
    cases.push({ name: 'dr gso', frame: f, method: METHOD.DR, decided: eth(out[0]!), expect: 1, want: out });
  }
  let tunIn: Uint8Array;
  let tunSegs: Uint8Array[];
  {
    const { lan, ts } = setup('tun', 70_000);
    ts(lan, tcp(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }), 0x02, [], false));
    tunIn = tcp(new PacketBuilder().eth({ dst: LAN_MAC, src: ROUTER_MAC }), 0x18, payload, true);
    tunSegs = ts(lan, tunIn).lan;
    assert.equal(tunSegs.length, 3, 'TS cut 3 IPIP segments');
    cases.push({ name: 'tun gso', frame: tunIn, method: METHOD.TUN, decided: eth(tunSegs[0]!), expect: 1, want: tunSegs });
  }

  await withNetns('fpv', async (n) => {
    await n.add('fp');
    await n.veth('fp', 'in0', 'fp', 'in1');
    await n.veth('fp', 'out0', 'fp', 'out1');
    await n.ip('fp', 'link', 'set', 'in0', 'address', LAN_MAC);
    const got = await runBed(n, cases);
    for (const c of cases.filter((x) => x.name.startsWith('punt'))) {
      const r = got.get(c.name)!;
      assert.equal(r.retFrames.length, 0, `${c.name}: nothing forwarded`);
      assert.equal(r.ringFrames, 1, `${c.name}: the packet socket got it (the TS path's)`);
      assert.equal(r.packets, 0, `${c.name}: not counted`);
    }
    for (const c of cases.filter((x) => x.name !== 'tun gso' && !x.name.startsWith('punt'))) {
      const r = got.get(c.name)!;
      assert.equal(r.ringFrames, 0, `${c.name}: the packet socket's filter refused it (never copied to the ring)`);
      assert.equal(r.retFrames.length, 1, `${c.name}: one frame reached out1`);
      assert.equal(r.packets, 1, `${c.name}: counted once`);
      assert.equal(r.bytes, c.frame.length - 10 - 14, `${c.name}: IP bytes as received`);
      const g = fromHex(r.retFrames[0]!);
      const w = c.want[0]!;
      assert.equal(hex(eth(g)), hex(eth(w)), `${c.name}: bytes (partial checksum seed of the new addresses, ports, MACs)`);
      assert.deepEqual(vnetOf(g), vnetOf(w), `${c.name}: checksum and GSO state carried`);
    }
    // TUN: one GSO skb, encapsulated, with the inner packet as it came (its checksum still partial).
    const t = got.get('tun gso')!;
    assert.equal(t.retFrames.length, 1, `tun gso: one GSO frame reached out1, got ${t.retFrames.length}`);
    assert.equal(t.ringFrames, 0, 'tun gso: not on the ring');
    const g = fromHex(t.retFrames[0]!);
    const v = vnetOf(g);
    assert.equal(v.gsoType & 0x7f, 1, 'TCPv4 GSO');
    assert.equal(v.gsoSize, gsoSize, 'gso_size kept: the TS path cuts at the same size');
    assert.equal(v.needsCsum, 1);
    assert.equal(v.csumStart, 14 + 20 + 20, 'csum_start moved past the outer header');
    const ge = eth(g);
    assert.equal(hex(ge.subarray(0, 12)), hex(eth(tunSegs[0]!).subarray(0, 12)), 'MACs as the TS path writes them');
    assert.equal(hex(ge.subarray(34)), hex(eth(tunIn).subarray(14)), 'inner packet untouched');
    assert.equal(refSum(ge, 14, 34), 0xffff, 'outer header checksum');
    const o = ge.slice(14, 34);
    const s = eth(tunSegs[0]!).slice(14, 34);
    for (const at of [2, 3, 4, 5, 10, 11]) o[at] = s[at] = 0;
    assert.equal(hex(o), hex(s), 'outer header as the TS path writes it (but length, ID, checksum)');

    // With out0's offloads off, the kernel segments that skb at out0: the segments must be the TS path's.
    await n.sh('fp', 'ethtool -K out0 tx off tso off gso off >/dev/null');
    const seg = (await runBed(n, [{ ...cases.find((x) => x.name === 'tun gso')!, expect: 3 }])).get('tun gso')!;
    assert.equal(seg.retFrames.length, 3, 'three segments');
    seg.retFrames.forEach((h, i) => {
      const a = eth(fromHex(h)).slice();
      const b = eth(tunSegs[i]!);
      assert.equal(refSum(a, 14, 34), 0xffff, `segment ${i}: outer checksum`);
      for (const at of [18, 19, 24, 25]) a[at] = b[at]!;
      assert.equal(hex(a), hex(b), `segment ${i} equals the TS path's (but outer ID and checksum)`);
    });
  });
});
