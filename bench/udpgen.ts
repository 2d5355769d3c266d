// A UDP flood generator for benchmarks: 60-byte frames over 256 flows, sent with an AF_PACKET port's txBurst.
//
// Usage (inside the sender's namespace, as root):
//   node --import tsx bench/udpgen.ts --if IF --dst-mac MAC --src IP --dst IP --seconds S [--rate PPS] [--burst N]
// --rate 0 (default) sends as fast as it can. Prints one JSON line: {sent, refused, seconds, pps}.
import { parseArgs } from 'node:util';
import { AfPacketPort } from '../src/io/afpacket.ts';
import { VNET_HDR_LEN } from '../src/io/port.ts';

const { values } = parseArgs({
  options: {
    if: { type: 'string' },
    'dst-mac': { type: 'string' },
    src: { type: 'string' },
    dst: { type: 'string' },
    seconds: { type: 'string', default: '5' },
    rate: { type: 'string', default: '0' },
    burst: { type: 'string', default: '256' },
    flows: { type: 'string', default: '256' },
  },
});
if (!values.if || !values['dst-mac'] || !values.src || !values.dst) {
  console.error('usage: udpgen --if IF --dst-mac MAC --src IP --dst IP [--seconds S] [--rate PPS] [--burst N]');
  process.exit(2);
}
const port = new AfPacketPort(values.if, { ringFrames: 16, frameSize: 4096 });
const burst = Number(values.burst);
const flows = Number(values.flows);
const rate = Number(values.rate);
const seconds = Number(values.seconds);
const ip = (s: string) => s.split('.').map(Number);
const mac = values['dst-mac'].split(':').map((x) => parseInt(x, 16));

// 60-byte Ethernet frames (18-byte UDP payload), one per flow, complete checksums (vnet header zero).
const FRAME = 60;
const SLOT = 128;
const buf = new Uint8Array(flows * SLOT);
for (let f = 0; f < flows; f++) {
  const o = f * SLOT + VNET_HDR_LEN;
  const dv = new DataView(buf.buffer, o);
  buf.set(mac, o);
  buf.set(port.mac, o + 6);
  dv.setUint16(12, 0x0800);
  const ipo = 14;
  buf[o + ipo] = 0x45;
  dv.setUint16(ipo + 2, FRAME - 14);
  dv.setUint16(ipo + 4, f);
  buf[o + ipo + 8] = 64;
  buf[o + ipo + 9] = 17;
  buf.set(ip(values.src), o + ipo + 12);
  buf.set(ip(values.dst), o + ipo + 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += dv.getUint16(ipo + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  dv.setUint16(ipo + 10, ~sum & 0xffff);
  const udp = ipo + 20;
  dv.setUint16(udp, 10000 + f);
  dv.setUint16(udp + 2, 9);
  dv.setUint16(udp + 4, FRAME - 34);
  dv.setUint16(udp + 6, 0); // no UDP checksum (legal for IPv4)
}
const offsets = new Uint32Array(burst);
const lengths = new Uint32Array(burst).fill(FRAME + VNET_HDR_LEN);
for (let i = 0; i < burst; i++) offsets[i] = (i % flows) * SLOT;

let sent = 0;
let refused = 0;
const t0 = process.hrtime.bigint();
const end = t0 + BigInt(Math.round(seconds * 1e9));
for (;;) {
  const now = process.hrtime.bigint();
  if (now >= end) break;
  let n = burst;
  if (rate > 0) {
    const due = Math.floor((Number(now - t0) / 1e9) * rate) - sent - refused;
    if (due <= 0) continue;
    n = Math.min(burst, due);
  }
  const ok = port.txBurst(buf, offsets, lengths, n);
  sent += ok;
  refused += n - ok;
}
const secs = Number(process.hrtime.bigint() - t0) / 1e9;
port.close();
console.log(JSON.stringify({ sent, refused, seconds: secs, pps: Math.round(sent / secs) }));
