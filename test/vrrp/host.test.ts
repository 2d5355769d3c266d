// VRRP hosted in two Dataplanes over memory ports: election, ARP ownership, takeover, priority 0, and bad adverts dropped and counted without a state change.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import { buildAdvert, VRRP_GROUP } from '../../src/vrrp/packet.ts';
import { csumFold, pseudoSum, sum16 } from '../../src/packet/checksum.ts';
import type { VrrpEvent } from '../../src/vrrp/host.ts';
import { PacketBuilder, ip, mac } from '../packet/builder.ts';
import { ParsedFrame, parseFrame, Verdict } from '../../src/packet/parse.ts';

const quiet = () => {};

function director(name: string, own: string, macs: string, priority: number, extra: Record<string, unknown> = {}) {
  const port = new MemoryPort('lan0', { mac: mac(macs), maxFrame: 2048 });
  const events: VrrpEvent[] = [];
  const logs: string[] = [];
  const config = validateConfig({
    interfaces: ['lan0'],
    addresses: [`${own}/24@lan0`],
    vrrp: { instances: [{ name: 'VI_1', interface: 'lan0', vrid: 51, priority, addresses: ['198.18.1.100/32'], ...extra }] },
  });
  const dp = new Dataplane([port], config, (_level, msg) => logs.push(msg), null, (e) => events.push(e), { linkState: () => true });
  return { name, port, dp, events, logs, state: () => dp.vrrp!.snapshot().instances[0]!.state, snap: () => dp.vrrp!.snapshot().instances[0]! };
}

type D = ReturnType<typeof director>;

/** A LAN segment: every frame one director sends reaches the other, unless it is cut off. */
function lan(a: D, b: D) {
  let now = 0;
  const dead = new Set<D>();
  const step = (ms: number) => {
    const end = now + ms;
    for (; now < end; now += 10) {
      for (const d of [a, b]) {
        if (dead.has(d)) continue;
        d.dp.director.runOnce(now);
        d.dp.tick(now);
      }
      for (const [x, y] of [[a, b], [b, a]] as const) {
        const frames = x.port.drain();
        if (dead.has(x) || dead.has(y)) continue;
        for (const f of frames) y.port.inject(f);
      }
    }
  };
  return { step, kill: (d: D) => dead.add(d), get now() { return now; } };
}

function arpAnswered(d: D, target: string): boolean {
  d.port.drain();
  const req = new PacketBuilder().eth({ dst: 'ff:ff:ff:ff:ff:ff', src: '02:00:00:00:0c:01' }).arp({ op: 1, sha: '02:00:00:00:0c:01', spa: '198.18.1.1', tpa: target }).build();
  d.port.inject(req.buf.subarray(req.off, req.off + req.len));
  d.dp.director.runOnce(0);
  const out = d.port.drain();
  const p = new ParsedFrame();
  return out.some((f) => parseFrame(f, 0, f.length, p, 0) === Verdict.ARP && f[p.l3 + 7] === 2);
}

/** Director a (priority 150) and b (100) on one LAN, started and run 5 s: a MASTER, b BACKUP. */
function startedPair() {
  const a = director('a', '198.18.1.2', '02:00:00:00:01:02', 150);
  const b = director('b', '198.18.1.3', '02:00:00:00:01:03', 100);
  const net = lan(a, b);
  a.dp.start(0);
  b.dp.start(0);
  net.step(5000);
  return { a, b, net };
}

test('vrrp host: the higher priority wins, owns the VIP (ARP), the backup takes over within Master_Down_Interval of the master dying', () => {
  const { a, b, net } = startedPair();
  assert.equal(a.state(), 'MASTER');
  assert.equal(b.state(), 'BACKUP');
  assert.equal(b.snap().master, '198.18.1.2');
  assert.ok(a.dp.director.isLocal(ip('198.18.1.100')));
  assert.ok(!b.dp.director.isLocal(ip('198.18.1.100')));
  assert.ok(arpAnswered(a, '198.18.1.100'));
  assert.ok(!arpAnswered(b, '198.18.1.100'), 'a backup does not answer ARP for the VIP');
  assert.ok(b.snap().stats.advertsReceived >= 1);
  // kill -9: adverts stop without priority 0.
  const killedAt = net.now;
  net.kill(a);
  const mdi = b.snap().masterDownIntervalMs;
  assert.equal(mdi, Math.round(3000 + (156 * 1000) / 256));
  while (b.state() === 'BACKUP' && net.now < killedAt + 10_000) net.step(10);
  const took = net.now - killedAt;
  assert.equal(b.state(), 'MASTER');
  assert.ok(took <= mdi + 1000 && took >= mdi - 1000, `takeover after ${took} ms (Master_Down_Interval ${mdi} ms)`);
  assert.ok(b.dp.director.isLocal(ip('198.18.1.100')));
  const ev = b.events.find((e) => e.to === 'MASTER')!;
  assert.match(ev.reason, /master down timer expired \(no advert from 198\.18\.1\.2/);
});

test('vrrp host: a clean stop sends priority 0 and the backup takes over after Skew_Time', () => {
  const { a, b, net } = startedPair();
  assert.equal(a.state(), 'MASTER');
  a.dp.close(net.now);
  assert.ok(!a.dp.director.isLocal(ip('198.18.1.100')));
  const stopped = net.now;
  net.kill(a);
  // The priority-0 advert is still in a's queue: deliver it by hand, as the wire would.
  for (const f of a.port.drain()) b.port.inject(f);
  while (b.state() === 'BACKUP' && net.now < stopped + 5000) net.step(10);
  assert.equal(b.state(), 'MASTER');
  assert.ok(net.now - stopped <= 700, `took ${net.now - stopped} ms`);
  assert.equal(b.snap().stats.priZeroReceived, 1);
});

test('vrrp host: preempt takes the VIP back for the higher priority; nopreempt keeps the running master', () => {
  for (const preempt of [true, false]) {
    const b = director('b', '198.18.1.3', '02:00:00:00:01:03', 100);
    const a = director('a', '198.18.1.2', '02:00:00:00:01:02', 150, { preempt });
    const net = lan(a, b);
    b.dp.start(0);
    net.step(4000);
    assert.equal(b.state(), 'MASTER');
    a.dp.start(net.now);
    net.step(6000);
    assert.equal(a.state(), preempt ? 'MASTER' : 'BACKUP', `preempt ${preempt}`);
    assert.equal(b.state(), preempt ? 'BACKUP' : 'MASTER');
    assert.equal(a.dp.director.isLocal(ip('198.18.1.100')), preempt);
    assert.equal(b.dp.director.isLocal(ip('198.18.1.100')), !preempt);
  }
});

function advertFrame(o: { ttl?: number; payload?: Uint8Array; src?: string; totLen?: number } = {}) {
  const payload = o.payload ?? buildAdvert({ version: 2, vrid: 51, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.100')] }, ip(o.src ?? '198.18.1.9'), VRRP_GROUP);
  const f = new PacketBuilder()
    .eth({ dst: '01:00:5e:00:00:12', src: '02:00:00:00:01:09' })
    .ipv4({ src: o.src ?? '198.18.1.9', dst: '224.0.0.18', ttl: o.ttl ?? 255, proto: 112, ...(o.totLen !== undefined ? { totLen: o.totLen } : {}) })
    .payload(payload)
    .build();
  return f.buf.subarray(f.off, f.off + f.len);
}

test('vrrp host: adverts with a bad checksum, TTL, length, auth or interval are dropped and counted; the state stays', () => {
  const b = director('b', '198.18.1.3', '02:00:00:00:01:03', 100, { state: 'MASTER' });
  b.dp.start(0);
  for (let t = 0; t <= 2000; t += 10) b.dp.tick(t);
  assert.equal(b.state(), 'MASTER');
  const good = buildAdvert({ version: 2, vrid: 51, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.100')] }, ip('198.18.1.9'), VRRP_GROUP);
  const badSum = good.slice();
  badSum[6]! ^= 0xff;
  const slow = buildAdvert({ version: 2, vrid: 51, priority: 200, adverIntCs: 300, addrs: [ip('198.18.1.100')] }, ip('198.18.1.9'), VRRP_GROUP);
  const v3 = buildAdvert({ version: 3, vrid: 51, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.100')] }, ip('198.18.1.9'), VRRP_GROUP);
  const otherVrid = buildAdvert({ version: 2, vrid: 52, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.100')] }, ip('198.18.1.9'), VRRP_GROUP);
  const pass = buildAdvert({ version: 2, vrid: 51, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.100')], authType: 1, authData: new Uint8Array(8).fill(0x41) }, ip('198.18.1.9'), VRRP_GROUP);
  for (const f of [
    advertFrame({ payload: badSum }),
    advertFrame({ ttl: 64 }),
    advertFrame({ payload: good.subarray(0, 16) }),
    advertFrame({ payload: slow }),
    advertFrame({ payload: v3 }),
    advertFrame({ payload: otherVrid }),
    advertFrame({ payload: pass }),
  ])
    b.port.inject(f);
  b.dp.director.runOnce(2010);
  b.dp.tick(2010);
  const s = b.snap();
  assert.equal(s.state, 'MASTER');
  assert.deepEqual(s.bad, { checksum: 1, ttl: 1, length: 1, interval: 1, version: 1, auth: 1 });
  assert.equal(s.stats.advertsBad, 6);
  assert.equal(s.stats.advertsReceived, 0);
  assert.deepEqual(b.dp.vrrp!.snapshot().unmatched, { vrid: 1 });
  // The good one makes it yield.
  b.port.inject(advertFrame());
  b.dp.director.runOnce(2020);
  assert.equal(b.state(), 'BACKUP');
});

test('vrrp host: random VRRP payloads and truncated adverts never throw and never change the state', () => {
  const b = director('b', '198.18.1.3', '02:00:00:00:01:03', 100, { state: 'MASTER' });
  b.dp.start(0);
  for (let t = 0; t <= 2000; t += 10) b.dp.tick(t);
  assert.equal(b.state(), 'MASTER');
  const good = buildAdvert({ version: 3, vrid: 51, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.100')] }, ip('198.18.1.9'), VRRP_GROUP);
  const sent = b.snap().stats.advertsSent;
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 48 }), fc.nat(good.length - 1).map((n) => good.subarray(0, n))), fc.nat(255), (payload, ttl) => {
      b.port.inject(advertFrame({ payload, ttl }));
      b.dp.director.runOnce(2100);
      assert.equal(b.state(), 'MASTER');
    }),
    { numRuns: 2000 },
  );
  assert.equal(b.snap().stats.advertsSent, sent, 'no advert was answered: nothing passed the checks');
});

test('vrrp host: a sync daemon that follows the instance (keepalived lvs_sync_daemon) is master while MASTER, backup otherwise', () => {
  const a = director('a', '198.18.1.2', '02:00:00:00:01:02', 150);
  const port = new MemoryPort('lan0', { mac: mac('02:00:00:00:01:05'), maxFrame: 2048 });
  const config = validateConfig({
    interfaces: ['lan0'],
    addresses: ['198.18.1.5/24@lan0'],
    sync_daemon: [{ state: 'backup', interface: 'lan0', syncid: 51, vrrp_instance: 'VI_1' }],
    vrrp: { instances: [{ name: 'VI_1', interface: 'lan0', vrid: 51, priority: 100, addresses: ['198.18.1.100/32'] }] },
  });
  const dp = new Dataplane([port], config, quiet, null, () => {}, { linkState: () => true });
  const b = { name: 'b', port, dp, events: [] as VrrpEvent[], logs: [] as string[], state: () => dp.vrrp!.snapshot().instances[0]!.state, snap: () => dp.vrrp!.snapshot().instances[0]! };
  const roles = () => {
    const r = dp.handle({ v: 1, id: 1, op: 'get-daemon' });
    assert.ok(r.ok);
    return (r.result as { daemons: Array<{ state: string }> }).daemons.map((d) => d.state);
  };
  const net = lan(a, b);
  b.dp.start(0);
  net.step(100);
  assert.deepEqual(roles(), ['backup']);
  net.step(4000);
  assert.equal(b.state(), 'MASTER');
  assert.deepEqual(roles(), ['master'], 'MASTER: the daemon switched to master');
  a.dp.start(net.now);
  net.step(5000);
  assert.equal(b.state(), 'BACKUP');
  assert.deepEqual(roles(), ['backup']);
});

test('vrrp host: an advert whose address list differs is taken, counted and logged (keepalived), so two routers never both stay master', () => {
  const b = director('b', '198.18.1.3', '02:00:00:00:01:03', 100, { state: 'MASTER' });
  b.dp.start(0);
  for (let t = 0; t <= 2000; t += 10) b.dp.tick(t);
  assert.equal(b.state(), 'MASTER');
  // The peer's virtual_ipaddress has one more address (an operator changing one side first).
  const twoAddrs = buildAdvert({ version: 2, vrid: 51, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.100'), ip('198.18.1.101')] }, ip('198.18.1.9'), VRRP_GROUP);
  b.port.inject(advertFrame({ payload: twoAddrs }));
  b.dp.director.runOnce(2010);
  assert.equal(b.state(), 'BACKUP', 'the higher-priority master is heard');
  // Same count, another address.
  const other = buildAdvert({ version: 2, vrid: 51, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.200')] }, ip('198.18.1.9'), VRRP_GROUP);
  b.port.inject(advertFrame({ payload: other }));
  b.dp.director.runOnce(2020);
  const s = b.snap();
  assert.equal(s.stats.addrListMismatch, 2);
  assert.equal(s.stats.advertsReceived, 2);
  assert.equal(s.stats.advertsBad, 0);
  assert.equal(b.logs.filter((l) => /lists other addresses than ours/.test(l)).length, 1, 'one line, rate limited');
  b.port.inject(advertFrame());
  b.dp.director.runOnce(2030);
  assert.equal(b.snap().stats.addrListMismatch, 2, 'a matching list is not counted');
});

test('vrrp host: a v3 advert interval of 0 is refused (it would make the backup flap every tick)', () => {
  const b = director('b', '198.18.1.3', '02:00:00:00:01:03', 100, { version: 3 });
  b.dp.start(0);
  b.dp.tick(0);
  const zero = buildAdvert({ version: 3, vrid: 51, priority: 200, adverIntCs: 0, addrs: [ip('198.18.1.100')] }, ip('198.18.1.9'), VRRP_GROUP);
  // buildAdvert clamps the interval to 1..4095: write 0 and recompute the v3 checksum (pseudo-header included).
  zero[4] = zero[5] = zero[6] = zero[7] = 0;
  const c = ~sum16(zero, 0, zero.length, csumFold(pseudoSum(ip('198.18.1.9'), VRRP_GROUP, 112, zero.length))) & 0xffff;
  zero[6] = c >>> 8;
  zero[7] = c & 0xff;
  for (let t = 10; t <= 200; t += 10) {
    b.port.inject(advertFrame({ payload: zero }));
    b.dp.director.runOnce(t);
    b.dp.tick(t);
  }
  const s = b.snap();
  assert.equal(s.state, 'BACKUP');
  assert.deepEqual(s.bad, { interval: 20 });
  assert.equal(s.stats.transitions, 1, 'INIT -> BACKUP only');
});

test('vrrp host: a flood of bad adverts is counted one by one but logged once per reason per minute', () => {
  const b = director('b', '198.18.1.3', '02:00:00:00:01:03', 100);
  b.dp.start(0);
  const good = buildAdvert({ version: 2, vrid: 51, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.100')] }, ip('198.18.1.9'), VRRP_GROUP);
  const badSum = good.slice();
  badSum[6]! ^= 0xff;
  for (let k = 0; k < 500; k++) {
    b.port.inject(advertFrame({ payload: badSum }));
    b.port.inject(advertFrame({ ttl: 1 }));
    b.dp.director.runOnce(k);
  }
  assert.deepEqual(b.snap().bad, { checksum: 500, ttl: 500 });
  const lines = b.logs.filter((l) => /refused/.test(l));
  assert.equal(lines.length, 2, lines.join('\n'));
  assert.match(lines[0]!, /VRRP instance VI_1: advert from 198\.18\.1\.9 refused \(checksum\)/);
  // A minute later the next one is logged with the count of those that were not.
  b.port.inject(advertFrame({ payload: badSum }));
  b.dp.director.runOnce(61_000);
  assert.match(b.logs.at(-1)!, /refused \(checksum\); 499 more refused/);
  // Another router's VRID is normal on a shared segment: counted, never logged; our own source address is.
  const before = b.logs.length;
  const otherVrid = buildAdvert({ version: 2, vrid: 52, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.100')] }, ip('198.18.1.9'), VRRP_GROUP);
  b.port.inject(advertFrame({ payload: otherVrid }));
  b.dp.director.runOnce(62_000);
  assert.equal(b.logs.length, before);
  assert.deepEqual(b.dp.vrrp!.snapshot().unmatched, { vrid: 1 });
  const spoofed = buildAdvert({ version: 2, vrid: 51, priority: 200, adverIntCs: 100, addrs: [ip('198.18.1.100')] }, ip('198.18.1.3'), VRRP_GROUP);
  b.port.inject(advertFrame({ payload: spoofed, src: '198.18.1.3' }));
  b.dp.director.runOnce(62_010);
  assert.match(b.logs.at(-1)!, /advert from 198\.18\.1\.3 refused \(own: it comes from one of our addresses/);
});

test('vrrp host: priority 255 without a state is MASTER at once; with state BACKUP it waits Master_Down_Interval (keepalived)', () => {
  const a = director('a', '198.18.1.2', '02:00:00:00:01:02', 255);
  a.dp.start(0);
  assert.equal(a.state(), 'MASTER');
  const b = director('b', '198.18.1.3', '02:00:00:00:01:03', 255, { state: 'BACKUP' });
  b.dp.start(0);
  assert.equal(b.state(), 'BACKUP');
  for (let t = 0; t <= 3010; t += 10) b.dp.tick(t);
  assert.equal(b.state(), 'MASTER');
});
