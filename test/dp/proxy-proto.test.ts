// Golden PROXY protocol frames on FullNAT TCP: v2/v1 header before the first byte, seq/ack/SACK shift, retransmitted first segment, MSS clamp, partial checksums; property test of the shift.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import type { MemoryPort } from '../../src/io/memory.ts';
import { PacketBuilder, ip, refSum } from '../packet/builder.ts';
import { ParsedFrame, parseFrame, Verdict, PARSE } from '../../src/packet/parse.ts';
import { readU32 } from '../../src/packet/checksum.ts';
import { CIP, LAN_MAC, LIP, NAT_MAC, RIP, ROUTER_MAC, RS_ROUTER_MAC, VIP, fullnatRig, out } from './fullnat-rig.ts';

function setup(pp: 'v1' | 'v2') {
  const { lan, nat, dp, d } = fullnatRig({ proxy: pp });
  let t = 1;
  const one = (port: MemoryPort, b: PacketBuilder, to: MemoryPort) => {
    const f = b.build();
    port.inject(f.buf.subarray(f.off, f.off + f.len));
    d.runOnce(t++);
    return out(to);
  };
  const fromClient = (tcp: Parameters<PacketBuilder['tcp']>[0], payload: number[] = [], partial = false, gsoSize = 0) => {
    let b = (gsoSize ? new PacketBuilder().vnet({ gsoType: 1, gsoSize, hdrLen: 54 }) : new PacketBuilder()).eth({ dst: LAN_MAC, src: ROUTER_MAC }).ipv4({ src: CIP, dst: VIP }).tcp({ sport: 40000, dport: 80, ...tcp }).payload(payload);
    if (partial) b = b.partialChecksum();
    return one(lan, b, nat);
  };
  const fromServer = (lport: number, tcp: Parameters<PacketBuilder['tcp']>[0], payload: number[] = []) =>
    one(nat, new PacketBuilder().eth({ dst: NAT_MAC, src: RS_ROUTER_MAC }).ipv4({ src: RIP, dst: LIP }).tcp({ sport: 8080, dport: lport, ...tcp }).payload(payload), lan);
  return { dp, fromClient, fromServer };
}

const seqOf = (x: { f: Uint8Array; p: ParsedFrame }) => readU32(x.f, x.p.l4 + 4);
const ackOf = (x: { f: Uint8Array; p: ParsedFrame }) => readU32(x.f, x.p.l4 + 8);
const payloadOf = (x: { f: Uint8Array; p: ParsedFrame }) => x.f.subarray(x.p.l4 + x.p.l4HdrLen, x.p.ipEnd);
const V2 = (cip: string, vip: string, cport: number, vport: number) => [
  0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a, 0x21, 0x11, 0, 12,
  ...cip.split('.').map(Number), ...vip.split('.').map(Number), cport >> 8, cport & 255, vport >> 8, vport & 255,
];
const MSS = (v: number) => [2, 4, v >> 8, v & 255];
const sack = (l: number, r: number) => [1, 1, 5, 10, l >>> 24, (l >>> 16) & 255, (l >>> 8) & 255, l & 255, r >>> 24, (r >>> 16) & 255, (r >>> 8) & 255, r & 255];

test('PROXY v2: header before the first byte; seq, ack and SACK shifted; retransmitted first segment gets it again; MSS clamped', () => {
  const { dp, fromClient, fromServer } = setup('v2');
  const ISN = 0xfffffff0; // the shift wraps around 2^32
  const first = (ISN + 1) >>> 0;
  const [syn] = fromClient({ flags: 0x02, seq: ISN, doff: 6 }, MSS(1460));
  assert.ok(syn);
  assert.equal(seqOf(syn), ISN, 'SYN untouched');
  const lport = syn.p.sport;
  const [synack] = fromServer(lport, { flags: 0x12, seq: 5000, ack: first, doff: 6 }, MSS(1460));
  assert.ok(synack);
  assert.equal(synack.v, Verdict.OK);
  assert.equal(ackOf(synack), first);
  assert.deepEqual([...synack.f.subarray(synack.p.l4 + 20, synack.p.l4 + 24)], MSS(1460 - 28), 'MSS lowered by the header length');
  // Handshake ACK: no payload, not shifted.
  const [ack] = fromClient({ flags: 0x10, seq: first, ack: 5001 });
  assert.equal(seqOf(ack!), first);
  // First data: the header in front, seq unchanged.
  const req = [...Buffer.from('GET / HTTP/1.0\r\n\r\n')];
  const [d1] = fromClient({ flags: 0x18, seq: first, ack: 5001 }, req);
  assert.ok(d1);
  assert.equal(d1.v, Verdict.OK, 'IP and TCP checksums verify after the insertion');
  assert.equal(seqOf(d1), first);
  assert.deepEqual([...payloadOf(d1)], [...V2(CIP, VIP, 40000, 80), ...req]);
  assert.equal(d1.p.totLen, 20 + 20 + 28 + req.length);
  assert.equal(d1.p.saddr, ip(LIP));
  // The server acks header + request and SACKs a later block; the client sees its own numbers.
  const n = req.length;
  const [a1] = fromServer(lport, { flags: 0x10, seq: 5001, ack: (first + 28 + n) >>> 0, doff: 8 }, sack((first + 28 + n + 100) >>> 0, (first + 28 + n + 200) >>> 0));
  assert.ok(a1);
  assert.equal(a1.v, Verdict.OK);
  assert.equal(ackOf(a1), (first + n) >>> 0);
  const o = a1.p.l4 + 24;
  assert.equal(readU32(a1.f, o), (first + n + 100) >>> 0, 'SACK left edge');
  assert.equal(readU32(a1.f, o + 4), (first + n + 200) >>> 0, 'SACK right edge');
  // A later client segment moves behind the header.
  const [d2] = fromClient({ flags: 0x10, seq: (first + n) >>> 0, ack: 5001 }, [1, 2, 3]);
  assert.equal(seqOf(d2!), (first + 28 + n) >>> 0);
  assert.equal(d2!.v, Verdict.OK);
  // The first segment retransmitted: the header again, same seq.
  const [r1] = fromClient({ flags: 0x18, seq: first, ack: 5001 }, req);
  assert.equal(seqOf(r1!), first);
  assert.deepEqual([...payloadOf(r1!)], [...V2(CIP, VIP, 40000, 80), ...req]);
  // An ack that only covers part of the header acknowledges none of the client's bytes.
  const [a2] = fromServer(lport, { flags: 0x10, seq: 5001, ack: (first + 10) >>> 0 });
  assert.equal(ackOf(a2!), first);
  assert.equal(dp.path.seqAdj.inserted, 2);
});

test('PROXY v1: an odd-length text line keeps the checksum right; a partial checksum gets its length fixed', () => {
  const { fromClient, fromServer } = setup('v1');
  const [syn] = fromClient({ flags: 0x02, seq: 100 });
  fromServer(syn!.p.sport, { flags: 0x12, seq: 7, ack: 101 });
  const line = [...Buffer.from('PROXY TCP4 198.18.0.2 198.18.1.100 40000 80\r\n')];
  assert.equal(line.length % 2, 1);
  const [d1] = fromClient({ flags: 0x18, seq: 101, ack: 8 }, [0x41, 0x42, 0x43]);
  assert.equal(d1!.v, Verdict.OK);
  assert.deepEqual([...payloadOf(d1!)], [...line, 0x41, 0x42, 0x43]);
  // Retransmission with NEEDS_CSUM: the seed must be the pseudo-header sum of the grown segment.
  const [r1] = fromClient({ flags: 0x18, seq: 101, ack: 8 }, [0x41, 0x42, 0x43], true);
  const x = r1!;
  assert.equal(x.f[0]! & 1, 1);
  const l4 = x.p.l4;
  const seed = (x.f[l4 + 16]! << 8) | x.f[l4 + 17]!;
  assert.equal(seed, refSum([...x.f.subarray(x.p.l3 + 12, x.p.l3 + 20), 0, 6, (x.p.ipEnd - l4) >> 8, (x.p.ipEnd - l4) & 255]));
  const done = x.f.slice();
  const c = ~refSum(done, l4, x.p.ipEnd) & 0xffff;
  done[l4 + 16] = c >> 8;
  done[l4 + 17] = c & 0xff;
  const p = new ParsedFrame();
  done[0] = done[0]! & ~1;
  assert.equal(parseFrame(done, 0, done.length, p, PARSE.VERIFY_L4), Verdict.OK, 'finished like the kernel, it verifies');
});

test('property: for any ISN and byte offsets, the server sees client byte k at first+len+k and its ack of it maps back to first+k', () => {
  const { fromClient, fromServer } = setup('v2');
  let cport = 20000;
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xffffffff }), fc.array(fc.integer({ min: 1, max: 3000 }), { minLength: 1, maxLength: 5 }), (isn, offs) => {
    cport++;
    const first = (isn + 1) >>> 0;
    const [syn] = fromClient({ sport: cport, flags: 0x02, seq: isn });
    const lport = syn!.p.sport;
    fromServer(lport, { flags: 0x12, seq: 1, ack: first });
    fromClient({ sport: cport, flags: 0x18, seq: first, ack: 2 }, [9]);
    for (const k of offs) {
      const [s] = fromClient({ sport: cport, flags: 0x10, seq: (first + k) >>> 0, ack: 2 }, [1]);
      assert.equal(seqOf(s!), (first + 28 + k) >>> 0);
      assert.equal(s!.v, Verdict.OK);
      const [a] = fromServer(lport, { flags: 0x10, seq: 2, ack: (first + 28 + k) >>> 0 });
      assert.equal(ackOf(a!), (first + k) >>> 0);
      assert.equal(a!.v, Verdict.OK);
    }
  }), { numRuns: 60 });
});

test('PROXY v2 on a GSO first segment: the header rides in front, the vnet header still describes the frame, segmenting it gives the stream', async () => {
  const { fromClient, fromServer } = setup('v2');
  const { gsoSegment } = await import('../../src/packet/gso.ts');
  const [syn] = fromClient({ flags: 0x02, seq: 1000 });
  fromServer(syn!.p.sport, { flags: 0x12, seq: 1, ack: 1001 });
  const data = Array.from({ length: 3000 }, (_, i) => (i * 7) & 0xff);
  // A 3000-byte GSO frame (gso_size 1000), partial checksum: as a client with TSO hands it over.
  const r = fromClient({ flags: 0x18, seq: 1001, ack: 2 }, data, true, 1000);
  assert.equal(r.length, 1, 'one GSO frame out (the port takes GSO)');
  const x = r[0]!;
  assert.equal(x.f[1], 1, 'still GSO TCPv4');
  assert.equal(x.f[4]! | (x.f[5]! << 8), 1000, 'gso_size kept');
  assert.equal(x.f[2]! | (x.f[3]! << 8), 54, 'hdr_len kept: the headers did not grow');
  assert.deepEqual([...payloadOf(x).subarray(0, 28)], V2(CIP, VIP, 40000, 80));
  assert.equal(x.p.totLen, 40 + 28 + 3000);
  // Cut it as the kernel would (here with tsvs's own segmenter) and check each segment's checksum and seq.
  const buf = new Uint8Array(64 * 4096);
  buf.set(x.f, 0);
  const offs = new Uint32Array(8);
  const lens = new Uint32Array(8);
  for (let i = 0; i < 8; i++) offs[i] = 8192 + i * 4096;
  const n = gsoSegment(buf, 0, x.f.length, x.p.l3, x.p.l4, x.p.l4HdrLen, buf, offs, lens, 4096);
  assert.equal(n, 4, '3028 bytes in segments of 1000');
  let want = 1001;
  const stream: number[] = [];
  for (let i = 0; i < n; i++) {
    const p = new ParsedFrame();
    assert.equal(parseFrame(buf, offs[i]!, lens[i]!, p, PARSE.VERIFY_L4), Verdict.OK, `segment ${i} verifies`);
    assert.equal(readU32(buf, p.l4 + 4), want);
    const pl = buf.subarray(p.l4 + p.l4HdrLen, p.ipEnd);
    want += pl.length;
    stream.push(...pl);
  }
  assert.deepEqual(stream, [...V2(CIP, VIP, 40000, 80), ...data]);
});
