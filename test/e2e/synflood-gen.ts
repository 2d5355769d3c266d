// A bounded flood for the hostile-input e2e test: TCP SYNs (or UDP datagrams) from random sources of one prefix, sent with an AF_PACKET port.
//
// Usage (inside the sender's namespace, as root):
//   node --import tsx test/e2e/synflood-gen.ts --if IF --dst-mac MAC --dst IP --dport P --net A.B.C.D/LEN
//        --count N --rate PPS [--seed S] [--proto tcp|udp] [--repeat K]
// Each flow has a source address drawn from --net (never its network or broadcast address) and a source
// port in 1024..65535, from a seeded xorshift generator, so a run is reproducible; --repeat K sends each
// flow's frame K times in a row (UDP: a flow of K datagrams). Stops after --count frames or 60 s,
// whichever comes first. Prints one JSON line: {sent, refused, seconds}.
import { parseArgs } from 'node:util';
import { AfPacketPort } from '../../src/io/afpacket.ts';
import { VNET_HDR_LEN } from '../../src/io/port.ts';
import { ipv4SetChecksum, l4SetChecksum, writeU16, writeU32 } from '../../src/packet/checksum.ts';
import { ipToU32, parseMac } from '../../src/lib/inet.ts';

const { values } = parseArgs({
  options: {
    if: { type: 'string' },
    'dst-mac': { type: 'string' },
    dst: { type: 'string' },
    dport: { type: 'string', default: '80' },
    net: { type: 'string' },
    count: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '1000' },
    seed: { type: 'string', default: '1' },
    proto: { type: 'string', default: 'tcp' },
    repeat: { type: 'string', default: '1' },
  },
});
if (!values.if || !values['dst-mac'] || !values.dst || !values.net) {
  console.error('usage: synflood-gen --if IF --dst-mac MAC --dst IP --dport P --net A.B.C.D/LEN --count N --rate PPS');
  process.exit(2);
}
const [netStr, lenStr] = values.net.split('/');
const plen = Number(lenStr);
if (!(plen >= 8 && plen <= 30)) throw new Error(`--net ${values.net}: prefix length must be 8..30`);
const hostBits = 32 - plen;
const net = (ipToU32(netStr!) & ~((1 << hostBits) - 1)) >>> 0;
const count = Number(values.count);
const rate = Number(values.rate);
const dport = Number(values.dport);
const udp = values.proto === 'udp';
if (!udp && values.proto !== 'tcp') throw new Error('--proto: tcp or udp');
const repeat = Number(values.repeat);
if (!(count > 0 && rate > 0 && Number.isInteger(repeat) && repeat >= 1 && repeat <= 64)) throw new Error('--count, --rate and --repeat (1..64) must be positive');
if (count % repeat !== 0) throw new Error('--count must be a multiple of --repeat');

const port = new AfPacketPort(values.if, { ringFrames: 16, frameSize: 4096 });
const BURST = 64 * repeat;
const SLOT = 128;
const L3 = VNET_HDR_LEN + 14;
const L4 = L3 + 20;
const END = L4 + 20; // TCP: a bare header; UDP: 8 bytes of header and 12 of payload
const buf = new Uint8Array(BURST * SLOT);
const dst = ipToU32(values.dst);
const dmac = parseMac(values['dst-mac']);
for (let f = 0; f < BURST; f++) {
  const o = f * SLOT;
  buf.set(dmac, o + VNET_HDR_LEN);
  buf.set(port.mac, o + VNET_HDR_LEN + 6);
  writeU16(buf, o + VNET_HDR_LEN + 12, 0x0800);
  buf[o + L3] = 0x45;
  writeU16(buf, o + L3 + 2, 40);
  buf[o + L3 + 6] = 0x40; // DF
  buf[o + L3 + 8] = 64;
  buf[o + L3 + 9] = udp ? 17 : 6;
  writeU32(buf, o + L3 + 16, dst);
  writeU16(buf, o + L4 + 2, dport);
  if (udp) writeU16(buf, o + L4 + 4, 20);
  else {
    buf[o + L4 + 12] = 0x50; // data offset 5 words
    buf[o + L4 + 13] = 0x02; // SYN
    writeU16(buf, o + L4 + 14, 64240);
  }
}

let x = (Number(values.seed) >>> 0) || 1;
const rnd = (): number => {
  x ^= x << 13;
  x ^= x >>> 17;
  x ^= x << 5;
  return x >>> 0;
};

const offsets = new Uint32Array(BURST);
const lengths = new Uint32Array(BURST).fill(END);
for (let i = 0; i < BURST; i++) offsets[i] = i * SLOT;
let sent = 0;
let refused = 0;
const t0 = process.hrtime.bigint();
const deadline = t0 + 60_000_000_000n;
while (sent + refused < count) {
  const now = process.hrtime.bigint();
  if (now >= deadline) break;
  const due = Math.min(count, Math.floor((Number(now - t0) / 1e9) * rate)) - sent - refused;
  if (due <= 0) {
    await new Promise((r) => setTimeout(r, 1));
    continue;
  }
  // Whole flows only: a burst carries each flow's `repeat` frames together.
  const n = Math.min(BURST, due - (due % repeat) || repeat);
  for (let f = 0; f < n; f += repeat) {
    const o = f * SLOT;
    const host = 1 + (rnd() % ((1 << hostBits) - 2));
    writeU32(buf, o + L3 + 12, (net + host) >>> 0);
    writeU16(buf, o + L3 + 4, rnd() & 0xffff);
    writeU16(buf, o + L4, 1024 + (rnd() % 64512));
    if (!udp) writeU32(buf, o + L4 + 4, rnd());
    writeU16(buf, o + L3 + 10, 0);
    ipv4SetChecksum(buf, o + L3, 20);
    writeU16(buf, o + L4 + (udp ? 6 : 16), 0);
    l4SetChecksum(buf, o + L3, o + L4, o + END, udp ? 17 : 6);
    for (let k = 1; k < repeat; k++) buf.copyWithin((f + k) * SLOT, o, o + END);
  }
  const ok = port.txBurst(buf, offsets, lengths, n);
  sent += ok;
  refused += n - ok;
}
const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
port.close();
console.log(JSON.stringify({ sent, refused, seconds }));
