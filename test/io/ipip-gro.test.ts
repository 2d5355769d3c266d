// Receive coalescing of the TUN decapsulator: which segments merge, and what the merged frame carries.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { GRO, GRO_MAX_IP, TUN_VNET_LEN, groBurst } from '../../src/io/ipip-gro.ts';
import { refSum } from '../packet/builder.ts';

const SLOT = 65536;
const ROOM = 20; // the stripped outer header in front of each inner packet
const ACK = 0x10;
const PSH = 0x08;

interface Seg {
  seq: number;
  len: number;
  ack?: number;
  flags?: number;
  sport?: number;
  proto?: number;
  opts?: number[];
  badCsum?: boolean;
  fill?: number;
}

/** An IPv4/TCP (or UDP) packet 198.18.0.2 → 198.18.1.100 with complete checksums. */
function packet(s: Seg): Uint8Array {
  const opts = s.opts ?? [];
  const proto = s.proto ?? 6;
  const l4h = proto === 6 ? 20 + opts.length : 8;
  const total = 20 + l4h + s.len;
  const p = new Uint8Array(total);
  p.set([0x45, 0, total >> 8, total & 0xff, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0, 198, 18, 0, 2, 198, 18, 1, 100]);
  const ipc = ~refSum(p, 0, 20) & 0xffff;
  p[10] = ipc >> 8;
  p[11] = ipc & 0xff;
  const sport = s.sport ?? 40000;
  p.set([sport >> 8, sport & 0xff, 0, 80], 20);
  if (proto === 6) {
    const w = (o: number, v: number) => p.set([(v >>> 24) & 0xff, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff], o);
    w(24, s.seq >>> 0);
    w(28, s.ack ?? 1000);
    p[32] = (l4h / 4) << 4;
    p[33] = s.flags ?? ACK;
    p[34] = 0xff;
    p.set(opts, 40);
  } else {
    p[24] = (8 + s.len) >> 8;
    p[25] = (8 + s.len) & 0xff;
  }
  for (let i = 0; i < s.len; i++) p[20 + l4h + i] = ((s.fill ?? s.seq) + i * 7) & 0xff;
  const l4 = total - 20;
  const pseudo = 198 * 256 + 18 + 0 * 256 + 2 + 198 * 256 + 18 + 1 * 256 + 100 + proto + l4;
  const co = proto === 6 ? 36 : 26;
  let c = ~refSum(p, 20, total, pseudo) & 0xffff;
  if (s.badCsum) c ^= 0x0101;
  p[co] = c >> 8;
  p[co + 1] = c & 0xff;
  return p;
}

/** Lays packets out as the decapsulator does (one per 64 KB slot, after the stripped outer header). */
function burst(segs: Seg[]) {
  const buf = new Uint8Array(segs.length * SLOT);
  const offsets = new Uint32Array(segs.length);
  const lengths = new Uint32Array(segs.length);
  segs.forEach((s, i) => {
    const p = packet(s);
    offsets[i] = i * SLOT + ROOM;
    lengths[i] = p.length;
    buf.set(p, offsets[i]!);
  });
  const counters = new Float64Array(GRO.COUNT);
  const left = groBurst(buf, offsets, lengths, segs.length, counters);
  const frames = [...offsets].map((o, i) => ({ i, vnet: buf.subarray(o, o + TUN_VNET_LEN), pkt: buf.subarray(o + TUN_VNET_LEN, o + lengths[i]!) })).filter((f) => lengths[f.i]! > 0);
  return { left, frames, counters };
}

const le16 = (b: Uint8Array, o: number) => b[o]! | (b[o + 1]! << 8);

test('groBurst: contiguous full-size segments and a short tail become one GSO TCPV4 frame with a partial checksum', () => {
  const segs = [0, 1, 2].map((k) => ({ seq: 5000 + k * 1000, len: 1000 })).concat([{ seq: 8000, len: 300, flags: ACK | PSH } as Seg]);
  const { left, frames, counters } = burst(segs);
  assert.equal(left, 1);
  assert.deepEqual([...counters], [3, 1]);
  const [f] = frames;
  const v = f!.vnet;
  assert.deepEqual([v[0], v[1], le16(v, 2), le16(v, 4), le16(v, 6), le16(v, 8)], [1, 1, 40, 1000, 20, 16]);
  const p = f!.pkt;
  assert.equal((p[2]! << 8) | p[3]!, 20 + 20 + 3300);
  assert.equal(refSum(p, 0, 20), 0xffff, 'IP header checksum');
  assert.equal(p[33], ACK | PSH, 'PSH of the last segment kept');
  // Payload is the four payloads in order.
  const want = segs.map((s) => packet(s).subarray(40));
  assert.deepEqual([...p.subarray(40)], want.flatMap((w) => [...w]));
  // Finishing the partial checksum (sum from csum_start, complemented) gives a checksum that verifies.
  const q = Uint8Array.from(p);
  const c = ~refSum(q, 20, q.length, 0) & 0xffff;
  q[36] = c >> 8;
  q[37] = c & 0xff;
  const pseudo = 198 * 256 + 18 + 2 + 198 * 256 + 18 + 256 + 100 + 6 + (q.length - 20);
  assert.equal(refSum(q, 20, q.length, pseudo), 0xffff);
});

test('groBurst: what must not merge is written alone (ACK, gap, flags, options, checksum, other flows, UDP)', () => {
  const ts = (v: number) => [1, 1, 8, 10, 0, 0, 0, v, 0, 0, 0, 1];
  const { frames, counters } = burst([
    { seq: 0, len: 1000 },
    { seq: 1000, len: 1000, ack: 2000 }, // another ACK number
    { seq: 3000, len: 1000, ack: 2000 }, // a gap
    { seq: 4000, len: 1000, ack: 2000, flags: ACK | 0x01 }, // FIN
    { seq: 10000, len: 1000, opts: ts(1) },
    { seq: 11000, len: 1000, opts: ts(2) }, // a newer timestamp
    { seq: 20000, len: 1000 },
    { seq: 21000, len: 1000, badCsum: true },
    { seq: 30000, len: 1000, sport: 40001 },
    { seq: 31000, len: 1000, sport: 40002 },
    { seq: 0, len: 100, proto: 17 },
  ]);
  assert.equal(frames.length, 11, 'nothing merged');
  assert.deepEqual([...counters], [0, 0]);
  const flags = frames.map((f) => f.vnet[0]);
  // Verified TCP data goes up marked DATA_VALID; the FIN, the bad checksum and UDP carry no claim.
  assert.deepEqual(flags, [2, 2, 2, 0, 2, 2, 2, 0, 2, 2, 0]);
  assert.ok(frames.every((f) => f.vnet[1] === 0), 'no GSO type on single packets');
});

test('groBurst: a PSH ends a run, a larger segment starts a new one, and runs stop short of the slot', () => {
  const r1 = burst([{ seq: 0, len: 1000, flags: ACK | PSH }, { seq: 1000, len: 1000 }, { seq: 2000, len: 1000 }, { seq: 3000, len: 1200 }]);
  assert.deepEqual(r1.frames.map((f) => [f.vnet[1], le16(f.vnet, 4)]), [[0, 0], [1, 1000], [0, 0]]);
  const n = Math.ceil(GRO_MAX_IP / 1400) + 3;
  const r2 = burst(Array.from({ length: n }, (_, k) => ({ seq: k * 1400, len: 1400 })));
  assert.equal(r2.frames.length, 2);
  for (const f of r2.frames) assert.ok(f.pkt.length <= GRO_MAX_IP);
  assert.equal(r2.frames.reduce((a, f) => a + f.pkt.length - 40, 0), n * 1400, 'every payload byte kept');
});
