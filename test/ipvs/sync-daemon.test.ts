// Master and backup sync daemons over two memory-port Dataplanes: what the master sends, what the backup installs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import type { Request, RequestBody } from '../../src/ctl/protocol.ts';
import { PacketBuilder, ip, mac } from '../packet/builder.ts';
import { ParsedFrame, parseFrame, PARSE, Verdict } from '../../src/packet/parse.ts';
import { SM, SYNC_FLUSH_TIME_MS } from '../../src/ipvs/sync/master.ts';
import { RELAY } from '../../src/ipvs/sync/kernel-socket.ts';

const ROUTER_MAC = '02:00:00:00:0a:01';
const RS_MAC = '02:00:00:00:0b:01';
const CLIENT = '198.18.0.2';
const VIP = '198.18.1.100';

type Method = 'nat' | 'dr' | 'tun';

function director(n: number, method: Method) {
  const lanMac = `02:00:00:00:0${n}:01`;
  const natMac = `02:00:00:00:0${n}:02`;
  const lan = new MemoryPort('lan0', { mac: mac(lanMac), maxFrame: 4096 });
  const nat = new MemoryPort('nat0', { mac: mac(natMac), maxFrame: 4096 });
  const rip = method === 'nat' ? '198.18.2.11' : method === 'dr' ? '198.18.1.11' : '198.19.0.11';
  const config = validateConfig({
    interfaces: ['lan0', 'nat0'],
    addresses: [`${VIP}/32@lan0`, `198.18.1.${n + 1}/24@lan0`, '198.18.2.1/24@nat0'],
    gateway: '198.18.1.1',
    routes: ['198.19.0.0/24=198.18.1.1'],
    services: [
      { protocol: 'tcp', address: VIP, port: 80, scheduler: 'rr', realservers: [{ address: rip, port: method === 'nat' ? 8080 : 80, method }] },
      { protocol: 'tcp', address: VIP, port: 443, scheduler: 'rr', persistent: 300, realservers: [{ address: rip, port: 443, method }] },
    ],
  });
  const dp = new Dataplane([lan, nat], config, () => {});
  dp.director.neigh.learn(ip('198.18.1.1'), 0, mac(ROUTER_MAC), 0, 0, true);
  dp.director.neigh.learn(ip(rip), method === 'nat' ? 1 : 0, mac(RS_MAC), 0, 0, true);
  lan.drain();
  nat.drain();
  let id = 0;
  const req = (body: RequestBody) => dp.handle({ v: 1, id: ++id, ...body } as Request);
  return { lan, nat, dp, d: dp.director, rip, lanMac, natMac, req };
}

function tcp(dstMac: string, sport: number, flags: number, seq: number, dport = 80) {
  const b = new PacketBuilder().eth({ dst: dstMac, src: ROUTER_MAC }).ipv4({ src: CLIENT, dst: VIP, ttl: 63 }).tcp({ sport, dport, flags, seq, ack: 1 });
  const f = b.build();
  return f.buf.subarray(f.off, f.off + f.len);
}

function parsed(frames: Uint8Array[]) {
  return frames.map((f) => {
    const p = new ParsedFrame();
    const v = parseFrame(f, 0, f.length, p, PARSE.VERIFY_L4);
    return { f, p, v };
  });
}

const syncFrames = (frames: Uint8Array[]) => parsed(frames).filter((x) => x.p.proto === 17 && x.p.dport === 8848);

const START_MASTER: RequestBody = { op: 'start-daemon', daemon: { state: 'master', mcastIfn: 'lan0', syncid: 5, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 } };
const START_BACKUP: RequestBody = { op: 'start-daemon', daemon: { state: 'backup', mcastIfn: 'lan0', syncid: 0, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 } };

for (const method of ['nat', 'dr', 'tun'] as const) {
  test(`${method}: a conn through the master appears on the backup with its real server and state, and carries on there`, () => {
    const a = director(1, method);
    const b = director(2, method);
    assert.equal(a.req(START_MASTER).ok, true);
    assert.equal(b.req(START_BACKUP).ok, true);
    let now = 1000;
    a.dp.tick(now);
    b.dp.tick(now);
    // SYN, ACK, then data: the kernel syncs the ESTABLISHED conn at its 3rd client packet.
    a.lan.inject(tcp(a.lanMac, 40000, 0x02, 1));
    a.lan.inject(tcp(a.lanMac, 40000, 0x10, 2));
    a.lan.inject(tcp(a.lanMac, 40000, 0x18, 2));
    a.d.runOnce(now);
    a.lan.drain();
    a.nat.drain();
    a.dp.tick((now += 100));
    assert.equal(syncFrames(a.lan.drain()).length, 0, 'a message that is not full waits for the flush time');
    now += SYNC_FLUSH_TIME_MS;
    a.dp.tick(now);
    const sync = syncFrames(a.lan.drain());
    assert.equal(sync.length, 1);
    const s = sync[0]!;
    assert.equal(s.v, Verdict.OK, 'IP and UDP checksums verify');
    assert.equal(s.p.daddr, 0xe0000051);
    assert.equal(s.p.saddr, ip('198.18.1.2'));
    assert.equal(s.p.ttl, 1);
    assert.deepEqual([...s.f.subarray(10, 16)], [0x01, 0x00, 0x5e, 0x00, 0x00, 0x51]);
    // syncid 5 in the header
    assert.equal(s.f[s.p.l4 + 8 + 1], 5);

    b.dp.tick(now);
    b.lan.inject(s.f);
    b.d.runOnce(now);
    const conns = b.dp.ipvs.listConns();
    assert.equal(conns.length, 1);
    const c = conns[0]!;
    assert.equal(c.state, 'ESTABLISHED');
    assert.equal(c.caddr, ip(CLIENT));
    assert.equal(c.cport, 40000);
    assert.equal(c.daddr, ip(b.rip));
    assert.equal(c.dport, method === 'nat' ? 8080 : 80);
    assert.ok(c.flags & 0x20, 'IP_VS_CONN_F_SYNC');
    assert.ok(c.expiresMs > 899_000 && c.expiresMs <= 900_000);
    const list = b.req({ op: 'list' });
    assert.ok(list.ok);
    const dest = (list.result as { services: Array<{ dests: Array<{ activeConns: number }> }> }).services[0]!.dests[0]!;
    assert.equal(dest.activeConns, 1);
    const counters = b.dp.counters().sync!;
    assert.equal(counters.backup_messages, 1);
    assert.equal(counters.backup_conns_new, 1);
    assert.equal(a.dp.counters().sync!.master_conns, 1);

    // After a takeover: the next packet of the conn goes to the same real server, not scheduled again.
    b.lan.drain();
    b.nat.drain();
    b.lan.inject(tcp(b.lanMac, 40000, 0x18, 3));
    b.d.runOnce(now + 1);
    const out = parsed(method === 'nat' ? b.nat.drain() : b.lan.drain());
    assert.equal(out.length, 1);
    const o = out[0]!;
    if (method === 'nat') {
      assert.equal(o.p.daddr, ip(b.rip));
      assert.equal(o.p.dport, 8080);
      // The real server's reply is matched by the RS-side key and leaves from the VIP.
      const reply = new PacketBuilder().eth({ dst: b.natMac, src: RS_MAC }).ipv4({ src: b.rip, dst: CLIENT, ttl: 64 }).tcp({ sport: 8080, dport: 40000, flags: 0x18, seq: 9, ack: 3 }).build();
      b.nat.inject(reply.buf.subarray(reply.off, reply.off + reply.len));
      b.d.runOnce(now + 2);
      const back = parsed(b.lan.drain());
      assert.equal(back.length, 1);
      assert.equal(back[0]!.p.saddr, ip(VIP));
      assert.equal(back[0]!.p.sport, 80);
    } else if (method === 'dr') {
      assert.equal(o.p.daddr, ip(VIP));
      assert.equal([...o.f.subarray(10, 16)].map((x) => x.toString(16).padStart(2, '0')).join(':'), RS_MAC);
    } else {
      assert.equal(o.p.proto, 4, 'IPIP');
      assert.equal(o.p.daddr, ip(b.rip));
    }
    assert.equal(b.dp.ipvs.listConns().length, 1, 'no second conn was scheduled');
  });
}

test('persistent service: the template is synced and steers a new conn of the client on the backup', () => {
  const a = director(1, 'dr');
  const b = director(2, 'dr');
  a.req(START_MASTER);
  b.req(START_BACKUP);
  const now = 1000;
  a.dp.tick(now);
  b.dp.tick(now);
  for (const [f, s] of [[0x02, 1], [0x10, 2], [0x18, 2]] as const) a.lan.inject(tcp(a.lanMac, 40001, f, s, 443));
  a.d.runOnce(now);
  a.dp.tick(now + SYNC_FLUSH_TIME_MS);
  const sync = syncFrames(a.lan.drain());
  assert.equal(sync.length, 1);
  b.lan.inject(sync[0]!.f);
  b.d.runOnce(now + SYNC_FLUSH_TIME_MS);
  const conns = b.dp.ipvs.listConns();
  const tpl = conns.find((c) => c.template)!;
  assert.ok(tpl, 'template installed');
  assert.equal(tpl.cport, 0);
  assert.equal(tpl.daddr, ip(b.rip));
  assert.ok(conns.some((c) => !c.template && c.state === 'ESTABLISHED'));
});

test('backup refuses messages for unknown real servers, its own, and bad checksums, counting each', () => {
  const a = director(1, 'nat');
  const b = director(2, 'dr'); // another real server: the master's conns have no match here
  a.req(START_MASTER);
  b.req(START_BACKUP);
  a.dp.tick(1000);
  b.dp.tick(1000);
  for (const [f, s] of [[0x02, 1], [0x10, 2], [0x18, 2]] as const) a.lan.inject(tcp(a.lanMac, 40002, f, s));
  a.d.runOnce(1000);
  a.dp.tick(1000 + SYNC_FLUSH_TIME_MS);
  const s = syncFrames(a.lan.drain())[0]!;
  b.lan.inject(s.f);
  const bad = Uint8Array.from(s.f);
  bad[bad.length - 1]! ^= 0xff; // payload changed: the UDP checksum fails
  b.lan.inject(bad);
  b.d.runOnce(3000);
  assert.equal(b.dp.ipvs.listConns().length, 0);
  const c = b.dp.counters().sync!;
  assert.equal(c.backup_drop_no_dest, 1);
  assert.equal(c.backup_drop_bad_datagram, 1);
  // The master's own datagram, looped back to it with a backup running there too.
  a.req(START_BACKUP);
  a.lan.inject(s.f);
  a.d.runOnce(3000);
  assert.equal(a.dp.counters().sync!.backup_drop_own, 1);
});

test('daemon ops: errors as the kernel gives them, -L --daemon entries, both roles at once', () => {
  const a = director(1, 'nat');
  assert.deepEqual(a.req({ op: 'get-daemon' }), { v: 1, id: 1, ok: true, result: { daemons: [] } });
  const stop = a.req({ op: 'stop-daemon', state: 'master' });
  assert.equal(!stop.ok && stop.error.message, 'No daemon is running');
  const unknown = a.req({ op: 'start-daemon', daemon: { ...(START_MASTER as { daemon: object }).daemon, mcastIfn: 'nosuch0' } } as RequestBody);
  assert.equal(!unknown.ok && unknown.error.message, 'No such device');
  assert.equal(a.req(START_MASTER).ok, true);
  const again = a.req(START_MASTER);
  assert.equal(!again.ok && again.error.message, 'Daemon has already run');
  assert.equal(a.req({ op: 'start-daemon', daemon: { state: 'backup', mcastIfn: 'lan0', syncid: 9, syncMaxlen: 100, mcastGroup: '239.1.2.3', mcastPort: 9000, mcastTtl: 4 } }).ok, true);
  const list = a.req({ op: 'get-daemon' });
  assert.deepEqual(list.ok && list.result, {
    daemons: [
      { state: 'master', mcastIfn: 'lan0', syncid: 5, maxlen: 1472, group: '224.0.0.81', port: 8848, ttl: 1 },
      // The backup's maxlen is clamped to at least 1024, as start_sync_thread does.
      { state: 'backup', mcastIfn: 'lan0', syncid: 9, maxlen: 1024, group: '239.1.2.3', port: 9000, ttl: 4 },
    ],
  });
  assert.equal(a.req({ op: 'stop-daemon', state: 'master' }).ok, true);
  assert.equal(a.req({ op: 'stop-daemon', state: 'backup' }).ok, true);
  assert.deepEqual(a.req({ op: 'get-daemon' }).ok && (a.req({ op: 'get-daemon' }) as { result: unknown }).result, { daemons: [] });
});

test('many conns: full messages of at most sync_maxlen go out within the send delay', () => {
  const a = director(1, 'dr');
  a.req({ op: 'start-daemon', daemon: { state: 'master', mcastIfn: 'lan0', syncid: 0, syncMaxlen: 200, mcastGroup: '', mcastPort: 0, mcastTtl: 0 } });
  a.dp.tick(1000);
  // 12 conns × 36 bytes: messages of 8 + 5 × 36 = 188 <= 200 bytes.
  for (let i = 0; i < 12; i++) for (const [f, s] of [[0x02, 1], [0x10, 2], [0x18, 2]] as const) a.lan.inject(tcp(a.lanMac, 41000 + i, f, s));
  a.d.runOnce(1000);
  a.lan.drain();
  a.dp.tick(1030);
  const sent = syncFrames(a.lan.drain());
  assert.equal(sent.length, 2, 'the two full messages');
  for (const s of sent) assert.equal(s.p.ipEnd - s.p.l4 - 8, 188);
  a.dp.tick(1000 + SYNC_FLUSH_TIME_MS);
  const rest = syncFrames(a.lan.drain());
  assert.equal(rest.length, 1);
  assert.equal(rest[0]!.p.ipEnd - rest[0]!.p.l4 - 8, 8 + 2 * 36);
});

test('owned interface: the master\'s sync_maxlen fits the port MTU; a backup counts fragments and over-long datagrams as sync drops', () => {
  const lan = new MemoryPort('lan0', { mac: mac('02:00:00:00:01:01'), mtu: 1000, maxFrame: 4096 });
  const config = validateConfig({ interfaces: ['lan0'], addresses: [`${VIP}/32@lan0`, '198.18.1.2/24@lan0'], services: [] });
  const dp = new Dataplane([lan], config, () => {});
  let id = 0;
  const req = (body: RequestBody) => dp.handle({ v: 1, id: ++id, ...body } as Request);
  const daemon = (state: 'master' | 'backup', syncMaxlen: number): RequestBody => ({ op: 'start-daemon', daemon: { state, mcastIfn: 'lan0', syncid: 0, syncMaxlen, mcastGroup: '', mcastPort: 0, mcastTtl: 0 } });
  assert.equal(req(daemon('master', 0)).ok, true);
  assert.equal(dp.sync.list()[0]!.maxlen, 1000 - 28, 'the default 1472 cut to MTU - 28');
  req({ op: 'stop-daemon', state: 'master' });
  assert.equal(req(daemon('master', 5000)).ok, true);
  assert.equal(dp.sync.list()[0]!.maxlen, 972);
  // The backup's sync_maxlen (1024, its least): longer datagrams are dropped as the kernel's short read would.
  assert.equal(req(daemon('backup', 1024)).ok, true);
  const syncDgram = (len: number, frag: { mf?: boolean }) => {
    const f = new PacketBuilder().eth({ dst: '01:00:5e:00:00:51', src: ROUTER_MAC }).ipv4({ src: '198.18.1.9', dst: '224.0.0.81', ttl: 1, ...frag })
      .udp({ sport: 40000, dport: 8848 }).payload(new Uint8Array(len)).build();
    return f.buf.subarray(f.off, f.off + f.len);
  };
  const before = dp.counters();
  lan.inject(syncDgram(600, { mf: true }));
  lan.inject(syncDgram(1100, {}));
  dp.director.runOnce(1000);
  const c = dp.counters();
  assert.equal(c.sync!.backup_drop_fragment, 1);
  assert.equal(c.sync!.backup_drop_too_long, 1);
  assert.equal(c.drops.multicast, before.drops.multicast, 'not counted as a stray multicast');
});

test('YAML sync_daemon starts the daemons; one that follows a VRRP instance switches role as keepalived does', () => {
  const lan = new MemoryPort('lan0', { mac: mac('02:00:00:00:01:01') });
  const config = validateConfig({
    interfaces: ['lan0'],
    addresses: ['198.18.1.2/24@lan0'],
    sync_daemon: [{ state: 'backup', interface: 'lan0', syncid: 51, vrrp_instance: 'VI_1' }],
  });
  const dp = new Dataplane([lan], config, () => {});
  assert.deepEqual(dp.sync.list().map((d) => [d.state, d.syncid, d.maxlen]), [['backup', 51, 1472]]);
  assert.equal(dp.sync.vrrpState('VI_2', 'MASTER'), null);
  assert.equal(dp.sync.vrrpState('VI_1', 'MASTER'), 'master');
  assert.deepEqual(dp.sync.list().map((d) => [d.state, d.syncid, d.group]), [['master', 51, '224.0.0.81']]);
  assert.equal(dp.sync.vrrpState('VI_1', 'FAULT'), 'backup');
  assert.deepEqual(dp.sync.list().map((d) => d.state), ['backup']);
  assert.throws(() => validateConfig({ sync_daemon: [{ state: 'master', interface: 'a' }, { state: 'master', interface: 'b' }] }), /at most one master/);
  assert.throws(() => new Dataplane([new MemoryPort('lan0')], validateConfig({ interfaces: ['lan0'], sync_daemon: [{ state: 'master', interface: 'eth9' }] }), () => {}),
    /sync_daemon master on eth9: No such device/);
});

test('kernel interface: the daemons hand message bytes to the relay (the main thread\'s sockets) and take them from it', () => {
  const opened: string[] = [];
  const sent: Uint8Array[] = [];
  const relay = { open: (s: string, d: { mcastIfn: string }) => opened.push(`${s} ${d.mcastIfn}`), close: (s: string) => opened.push(`close ${s}`), send: (m: Uint8Array) => (sent.push(m.slice()), true) };
  const mk = (n: number) => {
    const lan = new MemoryPort('lan0', { mac: mac(`02:00:00:00:0${n}:01`) });
    const config = validateConfig({
      interfaces: ['lan0'],
      addresses: [`${VIP}/32@lan0`, `198.18.1.${n + 1}/24@lan0`],
      gateway: '198.18.1.1',
      services: [{ protocol: 'tcp', address: VIP, port: 80, scheduler: 'rr', realservers: [{ address: '198.18.1.11', port: 80, method: 'dr' }] }],
    });
    const dp = new Dataplane([lan], config, () => {}, relay);
    dp.director.neigh.learn(ip('198.18.1.1'), 0, mac(ROUTER_MAC), 0, 0, true);
    dp.director.neigh.learn(ip('198.18.1.11'), 0, mac(RS_MAC), 0, 0, true);
    return { lan, dp };
  };
  const a = mk(1);
  const b = mk(2);
  // "lo" is a kernel interface every Linux has.
  const start = (dp: Dataplane, state: 'master' | 'backup') => dp.handle({ v: 1, id: 1, op: 'start-daemon', daemon: { state, mcastIfn: 'lo', syncid: 0, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 } });
  assert.equal(start(a.dp, 'master').ok, true);
  assert.equal(start(b.dp, 'backup').ok, true);
  assert.deepEqual(opened, ['master lo', 'backup lo']);
  a.dp.tick(1000);
  b.dp.tick(1000);
  for (const [f, s] of [[0x02, 1], [0x10, 2], [0x18, 2]] as const) a.lan.inject(tcp('02:00:00:00:01:01', 42000, f, s));
  a.dp.director.runOnce(1000);
  a.dp.tick(1000 + SYNC_FLUSH_TIME_MS);
  assert.equal(sent.length, 1);
  assert.equal(syncFrames(a.lan.drain()).length, 0, 'nothing on the owned port');
  b.dp.tick(1000 + SYNC_FLUSH_TIME_MS);
  b.dp.sync.receiveRelayed(sent[0]!);
  const c = b.dp.ipvs.listConns();
  assert.equal(c.length, 1);
  assert.equal(c[0]!.state, 'ESTABLISHED');
  b.dp.handle({ v: 1, id: 2, op: 'stop-daemon', state: 'backup' });
  assert.equal(opened.at(-1), 'close backup');
});

test('kernel interface: a role runs once the main thread has its socket; a refused socket stops it; relay counters are true', () => {
  const shared = new Int32Array(new SharedArrayBuffer(RELAY.SLOTS * 4));
  const sent: Uint8Array[] = [];
  const relay = { open: () => {}, close: () => {}, send: (m: Uint8Array) => (sent.push(m.slice()), true), shared };
  const lan = new MemoryPort('lan0', { mac: mac('02:00:00:00:01:01') });
  const config = validateConfig({
    interfaces: ['lan0'],
    addresses: [`${VIP}/32@lan0`, '198.18.1.2/24@lan0'],
    services: [{ protocol: 'tcp', address: VIP, port: 80, scheduler: 'rr', realservers: [{ address: '198.18.1.11', port: 80, method: 'dr' }] }],
  });
  const dp = new Dataplane([lan], config, () => {}, relay);
  const start = (state: 'master' | 'backup') => dp.handle({ v: 1, id: 1, op: 'start-daemon', daemon: { state, mcastIfn: 'lo', syncid: 0, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 } });
  assert.equal(start('master').ok, true);
  assert.equal(start('backup').ok, true);
  assert.equal(dp.sync.awaitingRelay('master'), true);
  assert.equal(dp.sync.relayOpened('master', null), true);
  assert.equal(dp.sync.awaitingRelay('master'), false);
  assert.equal(dp.sync.relayOpened('backup', 'bind EADDRINUSE'), false);
  assert.deepEqual(dp.sync.list().map((e) => e.state), ['master'], 'the refused backup is not running');
  // Two messages handed over (as SyncMaster counts them), one of which the kernel then refused.
  dp.sync.master!.master.counts[SM.MSGS] = 2;
  Atomics.add(shared, RELAY.TX_FAILED, 1);
  const c = dp.sync.counters();
  assert.equal(c.master_messages, 1);
  assert.equal(c.master_send_failed, 1);
  // A backup drops a relayed message longer than its sync_maxlen, and lowers the in-flight count.
  assert.equal(start('backup').ok, true);
  dp.sync.relayOpened('backup', null);
  Atomics.store(shared, RELAY.RX_INFLIGHT, 1);
  const long = new Uint8Array(dp.sync.backup!.entry.maxlen + 1);
  long[2] = long.length >> 8;
  long[3] = long.length & 0xff;
  dp.sync.receiveRelayed(long);
  assert.equal(dp.sync.counters().backup_drop_too_long, 1);
  assert.equal(Atomics.load(shared, RELAY.RX_INFLIGHT), 0);
  Atomics.add(shared, RELAY.RX_OTHER_IF, 2);
  assert.equal(dp.sync.counters().backup_drop_other_interface, 2);
});
