// Traffic helper the lab e2e tests run inside namespaces: UDP ask/listen, and IPIP-encapsulated UDP sent like a TUN director.
import { createSocket } from 'node:dgram';
import { ipipNative } from '../../src/io/ipip.ts';
import { ipToU32 } from '../../src/lib/inet.ts';

const [cmd, ...args] = process.argv.slice(2);

function timeout(ms: number, what: string): NodeJS.Timeout {
  return setTimeout(() => {
    console.error(`timeout: ${what}`);
    process.exit(1);
  }, ms);
}

/** IPv4 header + UDP (checksum 0: optional over IPv4) + payload. */
function udpPacket(src: string, dst: string, sport: number, dport: number, payload: Buffer): Buffer {
  const b = Buffer.alloc(28 + payload.length);
  b[0] = 0x45;
  b.writeUInt16BE(b.length, 2);
  b.writeUInt16BE(0x4000, 6);
  b[8] = 64;
  b[9] = 17;
  b.writeUInt32BE(ipToU32(src), 12);
  b.writeUInt32BE(ipToU32(dst), 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += b.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  b.writeUInt16BE(~sum & 0xffff, 10);
  b.writeUInt16BE(sport, 20);
  b.writeUInt16BE(dport, 22);
  b.writeUInt16BE(8 + payload.length, 24);
  payload.copy(b, 28);
  return b;
}

if (cmd === 'ask') {
  // ask HOST PORT PAYLOAD: one datagram, print the answer.
  const [host, port, payload] = args as [string, string, string];
  const s = createSocket('udp4');
  const t = timeout(3000, `no answer from ${host}:${port}`);
  s.on('message', (m) => {
    clearTimeout(t);
    process.stdout.write(m.toString('utf8'));
    s.close();
  });
  s.send(Buffer.from(payload), Number(port), host);
} else if (cmd === 'listen') {
  // listen ADDR PORT: print the first datagram (and its source), then exit.
  const [addr, port] = args as [string, string];
  const s = createSocket('udp4');
  const t = timeout(8000, `nothing on ${addr}:${port}`);
  s.on('message', (m, r) => {
    clearTimeout(t);
    process.stdout.write(`from ${r.address}:${r.port} ${m.toString('utf8')}`);
    s.close();
  });
  s.bind(Number(port), addr, () => console.error('listening'));
} else if (cmd === 'ipip') {
  // ipip RIP CIP VIP SPORT DPORT PAYLOAD: what a TUN director sends, three times 100 ms apart.
  const [rip, cip, vip, sport, dport, payload] = args as [string, string, string, string, string, string];
  const n = ipipNative();
  const fd = n.ipipRawOpen();
  const pkt = udpPacket(cip, vip, Number(sport), Number(dport), Buffer.from(payload));
  let sent = 0;
  for (let i = 0; i < 3; i++) {
    if (n.ipipSend(fd, pkt, 0, pkt.length, ipToU32(rip))) sent++;
    await new Promise((r) => setTimeout(r, 100));
  }
  n.ipipClose(fd);
  console.log(`sent ${sent}`);
  process.exit(sent > 0 ? 0 : 1);
} else {
  console.error('usage: probe ask HOST PORT PAYLOAD | listen ADDR PORT | ipip RIP CIP VIP SPORT DPORT PAYLOAD');
  process.exit(2);
}
