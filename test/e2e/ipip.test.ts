// The IPIP decapsulator end to end: D tunnels UDP datagrams and a TCP SYN to a real server S (VIP on lo)
// through a raw protocol-4 socket; S's decapsulator hands them to a TUN and real sockets answer from the VIP.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { canUseNetns, waitFor, withNetns, type Netns } from '../../src/lab/netns.ts';

const skip = !canUseNetns() && 'needs root (network namespaces, raw sockets, TUN)';
const IPIP_TS = new URL('../../src/io/ipip.ts', import.meta.url).pathname;
const D_IP = '198.18.1.2';
const S_IP = '198.18.1.11';
const VIP = '198.18.1.100';

const ip4 = (s: string): number[] => s.split('.').map(Number);

function sum16(bytes: number[], init = 0): number {
  let s = init;
  for (let i = 0; i < bytes.length; i += 2) s += (bytes[i]! << 8) | (bytes[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}

/** An IPv4 packet with a correct header checksum and a correct L4 checksum (pseudo-header included). */
function packet(src: string, dst: string, proto: number, l4: number[], l4CsumAt: number): number[] {
  const pseudo = [...ip4(src), ...ip4(dst), 0, proto, l4.length >> 8, l4.length & 0xff];
  const c = ~sum16(l4, sum16(pseudo)) & 0xffff;
  l4[l4CsumAt] = c >> 8;
  l4[l4CsumAt + 1] = c & 0xff;
  const total = 20 + l4.length;
  const h = [0x45, 0, total >> 8, total & 0xff, 0x12, 0x34, 0x40, 0, 64, proto, 0, 0, ...ip4(src), ...ip4(dst)];
  const hc = ~sum16(h) & 0xffff;
  h[10] = hc >> 8;
  h[11] = hc & 0xff;
  return [...h, ...l4];
}

function udp(src: string, dst: string, sport: number, dport: number, data: Buffer): number[] {
  const len = 8 + data.length;
  return packet(src, dst, 17, [sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, len >> 8, len & 0xff, 0, 0, ...data], 6);
}

function tcpSyn(src: string, dst: string, sport: number, dport: number): number[] {
  // 20-byte header, SYN, window 64240, no options.
  const h = [sport >> 8, sport & 0xff, dport >> 8, dport & 0xff, 0x01, 0x02, 0x03, 0x04, 0, 0, 0, 0, 0x50, 0x02, 0xfa, 0xf0, 0, 0, 0, 0];
  return packet(src, dst, 6, h, 16);
}

// Inside S: the decapsulator, printing JSON lines ("ready", then stats on SIGUSR1 and at SIGTERM).
const DECAP_JS = `
import { IpipDecap } from '${IPIP_TS}';
const d = new IpipDecap();
try { await d.start('tsvsipip0', '${VIP}'); }
catch (e) { console.log(JSON.stringify({ event: 'error', code: e.code, message: e.message })); process.exit(2); }
console.log(JSON.stringify({ event: 'ready' }));
process.on('SIGUSR1', () => console.log(JSON.stringify({ event: 'stats', stats: d.stats() })));
process.once('SIGTERM', async () => { await d.stop(); console.log(JSON.stringify({ event: 'exit', stats: d.stats() })); process.exit(0); });
`;

// Inside S: a real UDP echo server on the VIP and a TCP listener on the VIP.
const SERVER_JS = `
const dgram = require('dgram'), net = require('net');
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => { console.log(JSON.stringify({ got: m.toString('hex'), from: r.address + ':' + r.port })); u.send(m, r.port, r.address); });
u.bind(9000, '${VIP}', () => { net.createServer(() => {}).listen(9001, '${VIP}', () => console.log(JSON.stringify({ listening: true }))); });
`;

// Inside D: sends each inner packet through a raw IPIP socket to S, collects UDP echoes on port 7000.
const SENDER_JS = `
import { ipipNative } from '${IPIP_TS}';
import dgram from 'node:dgram';
const pkts = JSON.parse(process.env.TSVS_PKTS);
const want = Number(process.env.TSVS_WANT);
const n = ipipNative();
const fd = n.ipipRawOpen();
const replies = [];
const u = dgram.createSocket('udp4');
u.on('message', (m, r) => { replies.push({ hex: m.toString('hex'), from: r.address + ':' + r.port }); if (replies.length >= want) done(); });
const done = () => { console.log(JSON.stringify({ replies, sent })); n.ipipClose(fd); process.exit(0); };
let sent = 0;
u.bind(7000, '${D_IP}', () => {
  for (const hex of pkts) { const b = Buffer.from(hex, 'hex'); if (n.ipipSend(fd, b, 0, b.length, 0xc612010b)) sent++; }
  setTimeout(done, 4000);
});
`;

function lines(n: Netns, role: string, cmd: string[], env?: NodeJS.ProcessEnv) {
  const child = n.spawn(role, cmd, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  const seen: Record<string, unknown>[] = [];
  let err = '';
  let buf = '';
  child.stdout!.setEncoding('utf8').on('data', (d: string) => {
    buf += d;
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      const l = buf.slice(0, i);
      buf = buf.slice(i + 1);
      try {
        seen.push(JSON.parse(l) as Record<string, unknown>);
      } catch {
        // not ours
      }
    }
  });
  child.stderr!.setEncoding('utf8').on('data', (d: string) => (err += d));
  return { child, seen, err: () => err };
}

async function nstat(n: Netns, role: string, counter: string): Promise<number> {
  const out = await n.sh(role, `nstat -az ${counter}`);
  const m = new RegExp(`${counter}\\s+(\\d+)`).exec(out);
  if (!m) throw new Error(`no ${counter} in: ${out}`);
  return Number(m[1]);
}

test('ipip decap: tunnelled UDP reaches a real server on the VIP and is answered; SYN answered; bad ones counted', { skip, timeout: 90_000 }, async () => {
  await withNetns('ipip', async (n) => {
    await n.add('d');
    await n.add('s');
    await n.veth('d', 'd0', 's', 's0');
    await n.ip('d', 'addr', 'add', `${D_IP}/24`, 'dev', 'd0');
    await n.ip('s', 'addr', 'add', `${S_IP}/24`, 'dev', 's0');
    await n.ip('s', 'addr', 'add', `${VIP}/32`, 'dev', 'lo');
    await n.sh('s', 'sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2');

    const server = lines(n, 's', [process.execPath, '-e', SERVER_JS]);
    await waitFor('servers on the VIP', () => server.seen.some((o) => o.listening) || server.child.exitCode !== null, 10_000);
    assert.ok(server.seen.some((o) => o.listening), server.err());
    const decap = lines(n, 's', [process.execPath, '--import', 'tsx', '--input-type=module', '-e', DECAP_JS]);
    await waitFor('decapsulator ready', () => decap.seen.length > 0 || decap.child.exitCode !== null, 20_000);
    assert.deepEqual(decap.seen[0], { event: 'ready' }, decap.err() + JSON.stringify(decap.seen));
    assert.equal(await n.sh('s', 'cat /proc/sys/net/ipv4/conf/tsvsipip0/rp_filter'), '0\n');

    const icmpBefore = await nstat(n, 's', 'IcmpOutDestUnreachs');
    const tcpOutBefore = await nstat(n, 's', 'TcpOutSegs');
    const dTcpInBefore = await nstat(n, 'd', 'TcpInSegs');

    const payloads = [randomBytes(16), randomBytes(200), randomBytes(1300)];
    const good = payloads.map((p) => udp(D_IP, VIP, 7000, 9000, p));
    const syn = tcpSyn(D_IP, VIP, 7001, 9001);
    const badSum = udp(D_IP, VIP, 7000, 9000, Buffer.from('bad header checksum'));
    badSum[10] ^= 0xff;
    const shortInner = [0x45, 0, 0, 40, 1, 2, 3, 4, 5, 6];
    const foreign = udp(D_IP, '198.18.1.200', 7000, 9000, Buffer.from('not for the VIP'));
    const pkts = [...good, syn, badSum, shortInner, foreign].map((p) => Buffer.from(p).toString('hex'));
    const sender = lines(n, 'd', [process.execPath, '--import', 'tsx', '--input-type=module', '-e', SENDER_JS], {
      TSVS_PKTS: JSON.stringify(pkts),
      TSVS_WANT: String(payloads.length),
    });
    await new Promise((resolve) => sender.child.once('exit', resolve));
    const res = sender.seen[0] as { replies: { hex: string; from: string }[]; sent: number } | undefined;
    assert.ok(res, sender.err());
    assert.equal(res.sent, pkts.length);

    decap.child.kill('SIGUSR1');
    await waitFor('decapsulator stats', () => decap.seen.some((o) => o.event === 'stats'), 5_000);
    const mid = JSON.stringify(decap.seen.find((o) => o.event === 'stats')) + decap.err();

    // The UDP server got each datagram from the client address, byte for byte, and its answers (sent
    // from the VIP straight back, DR-style) reached D.
    const got = server.seen.filter((o) => o.got).map((o) => o.got as string);
    assert.deepEqual(got.sort(), payloads.map((p) => p.toString('hex')).sort(), mid);
    assert.ok(server.seen.filter((o) => o.got).every((o) => o.from === `${D_IP}:7000`));
    assert.deepEqual(res.replies.map((r) => r.hex).sort(), payloads.map((p) => p.toString('hex')).sort());
    assert.ok(res.replies.every((r) => r.from === `${VIP}:9000`));

    // The SYN reached S's listener, whose SYN-ACK went from the VIP to D.
    await waitFor('SYN-ACK at D', async () => (await nstat(n, 'd', 'TcpInSegs')) > dTcpInBefore, 5_000);
    assert.ok((await nstat(n, 's', 'TcpOutSegs')) > tcpOutBefore);

    decap.child.kill('SIGTERM');
    await new Promise((resolve) => decap.child.once('exit', resolve));
    const exit = decap.seen.find((o) => o.event === 'exit') as { stats: Record<string, number> } | undefined;
    assert.ok(exit, decap.err());
    const s = exit.stats;
    assert.equal(s.rxPackets, pkts.length, JSON.stringify(s));
    assert.equal(s.decapsulated, good.length + 1, JSON.stringify(s));
    assert.equal(s.txPackets, good.length + 1);
    assert.equal(s.badInner, 2);
    assert.equal(s.notVip, 1);
    assert.equal(s.badOuter, 0);
    assert.equal(s.txErrors, 0);
    // With a raw socket for protocol 4 open, the kernel sent no protocol-unreachable for the tunnel.
    assert.equal((await nstat(n, 's', 'IcmpOutDestUnreachs')) - icmpBefore, 0);
    // Closing the decapsulator removed its TUN.
    assert.match((await n.exec('s', ['ip', 'link', 'show', 'tsvsipip0'])).stderr, /does not exist/);
  });
});
