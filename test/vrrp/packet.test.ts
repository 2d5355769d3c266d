// VRRP packet codec: golden v2/v3 adverts worked out by hand from RFC 3768 / RFC 5798 (checksums included), and checks that refuse bad ones.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { Advert, Bad, buildAdvert, checkAdvert, passwordBytes, AUTH_PASS, VRRP_GROUP, authMatches, advertAddr } from '../../src/vrrp/packet.ts';
import { ip, hex } from '../packet/builder.ts';

const SRC = ip('198.18.1.2');
const VIP = ip('198.18.1.100');

// v2, VRID 51, priority 100, one address, no authentication, 1 s. Checksum over the VRRP message only:
// 0x2133 + 0x6401 + 0x0001 + 0xc612 + 0x0164 = 0x14cab -> 0x4cac, complement 0xb353.
const V2 = '21 33 64 01 00 01 b3 53 c6 12 01 64 00 00 00 00 00 00 00 00';
// v2 with auth_type PASS "secret": + 0x0100 + 0x7365 + 0x6372 + 0x6574 -> 0x89f8, complement 0x7607.
const V2_PASS = '21 33 64 01 01 01 76 07 c6 12 01 64 73 65 63 72 65 74 00 00';
// v3, VRID 51, priority 100, 100 cs. Checksum with the IPv4 pseudo-header 198.18.1.2 -> 224.0.0.18, proto 112, len 12:
// pseudo 0x1a7a2 + message 0x15d0e = 0x304b0 -> 0x04b3, complement 0xfb4c.
const V3 = '31 33 64 01 00 64 fb 4c c6 12 01 64';

const bytes = (s: string) => Uint8Array.from(s.split(' ').map((h) => parseInt(h, 16)));

test('vrrp packet: golden v2 advert (no authentication)', () => {
  const b = buildAdvert({ version: 2, vrid: 51, priority: 100, adverIntCs: 100, addrs: [VIP] }, SRC, VRRP_GROUP);
  assert.equal(hex(b), hex(bytes(V2)));
});

test('vrrp packet: golden v2 advert with PASS authentication', () => {
  const b = buildAdvert({ version: 2, vrid: 51, priority: 100, adverIntCs: 100, addrs: [VIP], authType: AUTH_PASS, authData: passwordBytes('secret') }, SRC, VRRP_GROUP);
  assert.equal(hex(b), hex(bytes(V2_PASS)));
  const a = new Advert();
  assert.equal(checkAdvert(b, 0, b.length, SRC, VRRP_GROUP, 255, a), Bad.NONE);
  assert.equal(a.authType, AUTH_PASS);
  assert.ok(authMatches(b, a, passwordBytes('secret')));
  assert.ok(!authMatches(b, a, passwordBytes('secreT')));
  // keepalived keeps the first 8 bytes of a longer password.
  assert.deepEqual([...passwordBytes('0123456789')], [...bytes('30 31 32 33 34 35 36 37')]);
});

test('vrrp packet: golden v3 advert, checksum over the pseudo-header', () => {
  const b = buildAdvert({ version: 3, vrid: 51, priority: 100, adverIntCs: 100, addrs: [VIP] }, SRC, VRRP_GROUP);
  assert.equal(hex(b), hex(bytes(V3)));
  // Unicast: the pseudo-header carries the peer's address, so the checksum differs.
  const u = buildAdvert({ version: 3, vrid: 51, priority: 100, adverIntCs: 100, addrs: [VIP] }, SRC, ip('198.18.1.3'));
  assert.notEqual(hex(u.subarray(6, 8)), hex(b.subarray(6, 8)));
  const a = new Advert();
  assert.equal(checkAdvert(u, 0, u.length, SRC, ip('198.18.1.3'), 255, a), Bad.NONE);
  assert.equal(checkAdvert(u, 0, u.length, SRC, VRRP_GROUP, 255, a), Bad.CHECKSUM);
});

test('vrrp packet: the golden adverts parse back', () => {
  const a = new Advert();
  const v2 = bytes(V2);
  assert.equal(checkAdvert(v2, 0, v2.length, SRC, VRRP_GROUP, 255, a), Bad.NONE);
  assert.deepEqual([a.version, a.vrid, a.priority, a.naddr, a.adverIntCs, a.authType], [2, 51, 100, 1, 100, 0]);
  assert.equal(advertAddr(v2, a, 0), VIP);
  const v3 = bytes(V3);
  assert.equal(checkAdvert(v3, 0, v3.length, SRC, VRRP_GROUP, 255, a), Bad.NONE);
  assert.deepEqual([a.version, a.vrid, a.priority, a.naddr, a.adverIntCs], [3, 51, 100, 1, 100]);
  // v2's checksum ignores the addresses of the IP header; v3's does not.
  assert.equal(checkAdvert(v2, 0, v2.length, ip('198.18.1.9'), VRRP_GROUP, 255, a), Bad.NONE);
  assert.equal(checkAdvert(v3, 0, v3.length, ip('198.18.1.9'), VRRP_GROUP, 255, a), Bad.CHECKSUM);
});

test('vrrp packet: bad version, type, length and checksum are refused', () => {
  const a = new Advert();
  const mod = (s: string, f: (b: Uint8Array) => void) => {
    const b = bytes(s);
    f(b);
    return b;
  };
  const v2 = mod(V2, () => {});
  assert.equal(checkAdvert(v2, 0, 7, SRC, VRRP_GROUP, 255, a), Bad.TRUNCATED);
  assert.equal(checkAdvert(mod(V2, (b) => (b[0] = 0x41)), 0, 20, SRC, VRRP_GROUP, 255, a), Bad.VERSION);
  assert.equal(checkAdvert(mod(V2, (b) => (b[0] = 0x22)), 0, 20, SRC, VRRP_GROUP, 255, a), Bad.TYPE);
  assert.equal(checkAdvert(v2, 0, 16, SRC, VRRP_GROUP, 255, a), Bad.LENGTH);
  // An address count that lies about the length.
  assert.equal(checkAdvert(mod(V2, (b) => (b[3] = 2)), 0, 20, SRC, VRRP_GROUP, 255, a), Bad.LENGTH);
  assert.equal(checkAdvert(mod(V2, (b) => (b[7]! ^= 1)), 0, 20, SRC, VRRP_GROUP, 255, a), Bad.CHECKSUM);
  assert.equal(checkAdvert(mod(V3, (b) => (b[2] = 101)), 0, 12, SRC, VRRP_GROUP, 255, a), Bad.CHECKSUM);
});

test('vrrp packet: random and truncated input never throws; what passes re-encodes to the same bytes', () => {
  const a = new Advert();
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(70), fc.integer(), fc.integer(), (buf, cut, s, d) => {
      const end = Math.min(cut, buf.length);
      const r = checkAdvert(buf, 0, end, s >>> 0, d >>> 0, 255, a);
      if (r === Bad.NONE) {
        const addrs = Array.from({ length: a.naddr }, (_, i) => advertAddr(buf, a, i));
        if (a.version === 3) {
          const again = buildAdvert({ version: 3, vrid: a.vrid, priority: a.priority, adverIntCs: a.adverIntCs, addrs }, s >>> 0, d >>> 0);
          assert.equal(again.length, end);
        }
      }
    }),
    { numRuns: 3000 },
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 255 }), fc.integer({ min: 0, max: 255 }), fc.array(fc.nat(), { maxLength: 20 }), fc.integer({ min: 1, max: 4095 }), fc.nat(12), (vrid, prio, addrs, cs, cut) => {
      const b = buildAdvert({ version: 3, vrid, priority: prio, adverIntCs: cs, addrs: addrs.map((x) => x >>> 0) }, SRC, VRRP_GROUP);
      assert.equal(checkAdvert(b, 0, b.length, SRC, VRRP_GROUP, 255, a), Bad.NONE);
      assert.equal(a.adverIntCs, cs);
      if (cut > 0) assert.notEqual(checkAdvert(b, 0, b.length - cut, SRC, VRRP_GROUP, 255, a), Bad.NONE);
    }),
    { numRuns: 500 },
  );
});
