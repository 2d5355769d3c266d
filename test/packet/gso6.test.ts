// Software GSO segmentation for IPv6: sizes, payload lengths, sequence numbers, flags and complete checksums, behind extension headers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PARSE, PF6, ParsedFrame6, Verdict, gsoSegment6, parseFrame6 } from '../../src/packet/index.ts';
import { PacketBuilder, type ExtSpec } from './builder.ts';

function segment(proto: 'tcp' | 'udp', payloadLen: number, mss: number, ext: ExtSpec[] = [], bigTcp = false) {
  const payload = Array.from({ length: payloadLen }, (_, i) => (i * 7) & 0xff);
  const b = new PacketBuilder()
    .vnet({ gsoType: proto === 'tcp' ? 4 : 5, gsoSize: mss })
    .eth()
    .ipv6({ src: '2001:db8::2', dst: '2001:db8:2::11', ext, payloadLen: bigTcp ? 0 : undefined });
  if (proto === 'tcp') b.tcp({ sport: 1000, dport: 80, seq: 0xfffff000, flags: 0x18 | 0x01 | 0x80 });
  else b.udp({ sport: 1000, dport: 53 });
  const f = b.payload(payload).partialChecksum().build();
  const p = new ParsedFrame6();
  assert.equal(parseFrame6(f.buf, f.off, f.len, p, 0), Verdict.OK);
  assert.ok(p.flags & PF6.GSO);
  const n = Math.ceil(payloadLen / mss);
  const slot = 2048;
  const dst = new Uint8Array(slot * (n + 1));
  const offs = Uint32Array.from({ length: n + 1 }, (_, i) => i * slot);
  const lens = new Uint32Array(n + 1);
  const made = gsoSegment6(f.buf, f.off, f.len, p.l3, p.l4, p.l4HdrLen, dst, offs, lens, slot);
  return { made, n, dst, offs, lens, payload, ext: p.extLen };
}

for (const [name, ext, big] of [
  ['plain', [], false],
  ['behind hop-by-hop and destination options', [{ type: 'hop' }, { type: 'dest', units: 1 }], false],
  ['a BIG TCP super-segment (payload length 0)', [], true],
] as [string, ExtSpec[], boolean][]) {
  test(`gso6: TCPV6, ${name}: MSS-sized segments that verify, sequence numbers and flags as the kernel cuts them`, () => {
    const { made, n, dst, offs, lens, payload, ext: extLen } = segment('tcp', 4000, 1440, ext, big);
    assert.equal(made, n);
    const got: number[] = [];
    for (let k = 0; k < made; k++) {
      const q = new ParsedFrame6();
      assert.equal(parseFrame6(dst, offs[k]!, lens[k]!, q, PARSE.VERIFY_L4), Verdict.OK, `segment ${k}`);
      assert.ok(q.flags & PF6.L4_VERIFIED);
      assert.equal(q.extLen, extLen);
      assert.equal(dst[offs[k]!], 0, 'vnet header cleared');
      const seq = ((dst[q.l4 + 4]! << 24) | (dst[q.l4 + 5]! << 16) | (dst[q.l4 + 6]! << 8) | dst[q.l4 + 7]!) >>> 0;
      assert.equal(seq, (0xfffff000 + k * 1440) >>> 0);
      const fl = dst[q.l4 + 13]!;
      assert.equal(fl & 0x80, k === 0 ? 0x80 : 0, 'CWR on the first only');
      assert.equal(fl & 0x09, k === made - 1 ? 0x09 : 0, 'FIN/PSH on the last only');
      assert.equal(q.payloadLen, extLen + 20 + (k === made - 1 ? 4000 - 2 * 1440 : 1440));
      got.push(...dst.subarray(q.l4 + 20, q.ipEnd));
    }
    assert.deepEqual(got, payload);
  });
}

test('gso6: UDP_L4 datagrams get their own lengths; other types and fragmented chains are refused', () => {
  const { made, dst, offs, lens } = segment('udp', 2500, 1000);
  assert.equal(made, 3);
  for (let k = 0; k < made; k++) {
    const q = new ParsedFrame6();
    assert.equal(parseFrame6(dst, offs[k]!, lens[k]!, q, PARSE.VERIFY_L4), Verdict.OK);
    assert.equal((dst[q.l4 + 4]! << 8) | dst[q.l4 + 5]!, 8 + (k === 2 ? 500 : 1000));
  }
  assert.equal(segment('tcp', 3000, 1000, [{ type: 'frag', offset: 0, more: false }]).made, -1);
  const f = new PacketBuilder().vnet({ gsoType: 1, gsoSize: 100 }).eth().ipv6().tcp().payload(new Array(300).fill(1)).build();
  const p = new ParsedFrame6();
  parseFrame6(f.buf, f.off, f.len, p, 0);
  assert.equal(gsoSegment6(f.buf, f.off, f.len, f.off + 24, f.off + 64, 20, new Uint8Array(4096), Uint32Array.of(0, 2048), new Uint32Array(2), 2048), -1);
});
