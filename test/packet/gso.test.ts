// Software GSO segmentation: sizes, sequence numbers, flags, ids and checksums of each segment.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PacketBuilder, refSum } from './builder.ts';
import { gsoSegment } from '../../src/packet/gso.ts';
import { ParsedFrame, parseFrame, Verdict, PARSE, PF } from '../../src/packet/parse.ts';

function segment(proto: 'tcp' | 'udp', payloadLen: number, mss: number, flags = 0x18 | 0x01 | 0x80) {
  const payload = Array.from({ length: payloadLen }, (_, i) => (i * 7) & 0xff);
  const b = new PacketBuilder()
    .vnet({ gsoType: proto === 'tcp' ? 1 : 5, gsoSize: mss, hdrLen: proto === 'tcp' ? 54 : 42 })
    .eth({ dst: '02:00:00:00:00:01', src: '02:00:00:00:00:02' })
    .ipv4({ src: '198.18.0.2', dst: '198.18.1.100', id: 100, df: true });
  if (proto === 'tcp') b.tcp({ sport: 1000, dport: 80, seq: 0xfffff000, flags });
  else b.udp({ sport: 1000, dport: 53 });
  const f = b.payload(payload).partialChecksum().build();
  const p = new ParsedFrame();
  assert.equal(parseFrame(f.buf, f.off, f.len, p, 0), Verdict.OK);
  assert.ok(p.flags & PF.GSO);
  const n = Math.ceil(payloadLen / mss);
  const slot = 2048;
  const dst = new Uint8Array(slot * n);
  const offs = Uint32Array.from({ length: n }, (_, i) => i * slot);
  const lens = new Uint32Array(n);
  const made = gsoSegment(f.buf, f.off, f.len, p.l3, p.l4, p.l4HdrLen, dst, offs, lens, slot);
  return { made, n, dst, offs, lens, payload };
}

test('gso: a TCP super-frame becomes MSS-sized segments with complete checksums', () => {
  const { made, n, dst, offs, lens, payload } = segment('tcp', 4000, 1448);
  assert.equal(made, n);
  const got: number[] = [];
  for (let k = 0; k < made; k++) {
    const q = new ParsedFrame();
    assert.equal(parseFrame(dst, offs[k]!, lens[k]!, q, PARSE.VERIFY_L4), Verdict.OK, `segment ${k}`);
    assert.ok(q.flags & PF.L4_VERIFIED);
    assert.equal(dst[offs[k]!], 0, 'vnet header cleared');
    assert.equal(q.id, 100 + k);
    const seq = ((dst[q.l4 + 4]! << 24) | (dst[q.l4 + 5]! << 16) | (dst[q.l4 + 6]! << 8) | dst[q.l4 + 7]!) >>> 0;
    assert.equal(seq, (0xfffff000 + k * 1448) >>> 0, 'sequence wraps correctly');
    const last = k === made - 1;
    assert.equal((q.tcpFlags & 0x01) !== 0, last, 'FIN only on the last');
    assert.equal((q.tcpFlags & 0x08) !== 0, last, 'PSH only on the last');
    assert.equal((q.tcpFlags & 0x80) !== 0, k === 0, 'CWR only on the first');
    assert.equal(refSum(dst, q.l3, q.l3 + 20), 0xffff);
    got.push(...dst.subarray(q.l4 + q.l4HdrLen, q.ipEnd));
  }
  assert.deepEqual(got, payload);
});

test('gso: UDP L4 segmentation gives datagrams with their own lengths', () => {
  const { made, dst, offs, lens, payload } = segment('udp', 3000, 1000);
  assert.equal(made, 3);
  const got: number[] = [];
  for (let k = 0; k < made; k++) {
    const q = new ParsedFrame();
    assert.equal(parseFrame(dst, offs[k]!, lens[k]!, q, PARSE.VERIFY_L4), Verdict.OK);
    assert.equal((dst[q.l4 + 4]! << 8) | dst[q.l4 + 5]!, 1008);
    got.push(...dst.subarray(q.l4 + 8, q.ipEnd));
  }
  assert.deepEqual(got, payload);
});

test('gso: not enough slots or a non-GSO frame is refused', () => {
  const f = new PacketBuilder().eth({}).ipv4({}).tcp({}).payload([1, 2, 3]).build();
  const p = new ParsedFrame();
  parseFrame(f.buf, f.off, f.len, p, 0);
  assert.equal(gsoSegment(f.buf, f.off, f.len, p.l3, p.l4, p.l4HdrLen, new Uint8Array(4096), new Uint32Array(2), new Uint32Array(2), 2048), -1);
});
