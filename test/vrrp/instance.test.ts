// VRRP state machine on a fake clock: Master_Down_Interval and skew per version, preempt/nopreempt/preempt_delay, priority 0, owner, faults, sync groups.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { VrrpInstance, State, STATE_NAMES, type InstanceIo, type InstanceSpec } from '../../src/vrrp/instance.ts';
import { VrrpSyncGroup } from '../../src/vrrp/group.ts';
import { Advert } from '../../src/vrrp/packet.ts';
import { ip } from '../packet/builder.ts';

const ME = ip('198.18.1.2');
const PEER = ip('198.18.1.3');

function spec(o: Partial<InstanceSpec> = {}): InstanceSpec {
  return { name: 'VI_1', vrid: 51, version: 2, priority: 100, adverIntCs: 100, initialMaster: false, preempt: true, preemptDelayMs: 0, garpRepeat: 5, garpDelayMs: 5000, garpRefreshMs: 0, garpRefreshRepeat: 1, src: ME, ...o };
}

function make(o: Partial<InstanceSpec> = {}) {
  const log = { adverts: [] as number[], own: [] as boolean[], garps: [] as number[], transitions: [] as string[] };
  const io: InstanceIo = {
    sendAdvert: (_i, p) => log.adverts.push(p),
    own: (_i, on) => log.own.push(on),
    garp: (_i, n) => log.garps.push(n),
    transition: (_i, from, to, reason) => log.transitions.push(`${STATE_NAMES[from]}->${STATE_NAMES[to]}: ${reason}`),
  };
  return { inst: new VrrpInstance(spec(o), io), log };
}

function advert(priority: number, o: Partial<Advert> = {}): Advert {
  return Object.assign(new Advert(), { version: 2, vrid: 51, priority, naddr: 1, adverIntCs: 100, saddr: PEER, daddr: ip('224.0.0.18'), ttl: 255, ...o });
}

test('vrrp instance: Master_Down_Interval = 3 x advert + skew, v2 skew (256-prio)/256 s', () => {
  const { inst, log } = make();
  assert.equal(inst.masterDownMs(), 3000 + (156 * 1000) / 256);
  inst.start(0);
  assert.equal(inst.state, State.BACKUP);
  inst.tick(3609);
  assert.equal(inst.state, State.BACKUP);
  inst.tick(3610);
  assert.equal(inst.state, State.MASTER);
  assert.deepEqual(log.own, [true]);
  assert.deepEqual(log.adverts, [100], 'first advert at once');
  assert.deepEqual(log.garps, [4], 'garp_master_repeat 5: one with the address, four more');
  inst.tick(4609);
  assert.equal(log.adverts.length, 1);
  inst.tick(4610);
  assert.equal(log.adverts.length, 2, 'then one per advert interval');
  inst.tick(8610);
  assert.deepEqual(log.garps, [4, 5], 'second burst after garp_master_delay');
  assert.match(log.transitions.at(-1)!, /BACKUP->MASTER: master down timer expired/);
});

test('vrrp instance: v3 skew is ((256-prio) x Master_Adver_Interval)/256 and follows the master', () => {
  const { inst } = make({ version: 3, priority: 200, adverIntCs: 50 });
  assert.equal(inst.skewMs(), (56 * 500) / 256);
  assert.equal(inst.masterDownMs(), 1500 + (56 * 500) / 256);
  inst.start(0);
  // A master advertising every 2 s: Master_Adver_Interval becomes 200 cs.
  inst.receive(advert(220, { version: 3, adverIntCs: 200 }), 100);
  assert.equal(inst.masterAdverIntCs, 200);
  assert.equal(inst.downAt, 100 + 6000 + (56 * 2000) / 256);
  // v2's skew does not depend on the interval.
  assert.equal(make({ priority: 200, adverIntCs: 300 }).inst.skewMs(), (56 * 1000) / 256);
});

test('vrrp instance: a backup with preempt ignores a lower-priority master and takes over; nopreempt keeps it', () => {
  const pre = make({ priority: 150 });
  pre.inst.start(0);
  for (let t = 0; t < 3000; t += 1000) pre.inst.receive(advert(100), t);
  pre.inst.tick(3000 * 1 + (106 * 1000) / 256 + 1);
  assert.equal(pre.inst.state, State.MASTER);

  const nopre = make({ priority: 150, preempt: false });
  nopre.inst.start(0);
  for (let t = 0; t <= 10_000; t += 1000) {
    nopre.inst.receive(advert(100), t);
    nopre.inst.tick(t + 1);
  }
  assert.equal(nopre.inst.state, State.BACKUP);
  assert.equal(nopre.inst.masterAddr, PEER);
});

test('vrrp instance: preempt_delay holds a higher-priority backup back, then it preempts', () => {
  const { inst } = make({ priority: 150, preemptDelayMs: 5000 });
  inst.start(0);
  let t = 0;
  for (; t <= 5000; t += 1000) {
    inst.receive(advert(100), t);
    inst.tick(t + 1);
    assert.equal(inst.state, State.BACKUP, `at ${t}`);
  }
  // After the delay, lower-priority adverts are ignored and the down timer runs out.
  for (; inst.state === State.BACKUP && t < 20_000; t += 1000) {
    inst.receive(advert(100), t);
    inst.tick(t + 1);
  }
  assert.equal(inst.state, State.MASTER);
  assert.ok(t >= 8000 && t <= 10_000, `preempted at ${t}`);
});

test('vrrp instance: priority 0 from the master means take over after Skew_Time only', () => {
  const { inst } = make();
  inst.start(0);
  inst.receive(advert(200), 1000);
  inst.receive(advert(0), 1500);
  inst.tick(1500 + 600);
  assert.equal(inst.state, State.BACKUP);
  inst.tick(1500 + 610);
  assert.equal(inst.state, State.MASTER);
  assert.equal(inst.stats.priZeroReceived, 1);
});

test('vrrp instance: master yields to higher priority (and to equal priority from a higher address), answers lower at once', () => {
  const { inst, log } = make({ initialMaster: true });
  inst.start(0);
  inst.tick(1000 + 1);
  assert.equal(inst.state, State.BACKUP, 'state MASTER waits one interval plus the minimum skew');
  inst.tick(1004);
  assert.equal(inst.state, State.MASTER);
  const sent = log.adverts.length;
  inst.receive(advert(50), 1100);
  assert.equal(log.adverts.length, sent + 1, 'a lower-priority advert is answered at once');
  assert.equal(inst.state, State.MASTER);
  inst.receive(advert(100, { saddr: ip('198.18.1.1') }), 1200);
  assert.equal(inst.state, State.MASTER, 'equal priority, lower address: we stay');
  inst.receive(advert(100, { saddr: PEER }), 1300);
  assert.equal(inst.state, State.BACKUP, 'equal priority, higher address: they win');
  assert.deepEqual(log.own, [true, false]);
});

test('vrrp instance: an address owner (255) is master at once; a clean stop sends priority 0 and releases', () => {
  const { inst, log } = make({ priority: 255, initialMaster: true });
  inst.start(0);
  assert.equal(inst.state, State.MASTER);
  inst.receive(advert(254), 10);
  assert.equal(inst.state, State.MASTER);
  inst.stop(20);
  assert.equal(inst.state, State.STOP);
  assert.equal(log.adverts.at(-1), 0);
  assert.deepEqual(log.own, [true, false]);
  assert.equal(inst.stats.priZeroSent, 1);
});

test('vrrp instance: a fault releases the addresses with priority 0; clearing it returns to BACKUP; weights move the priority', () => {
  const { inst, log } = make({ priority: 100 });
  inst.start(0);
  inst.tick(4000);
  assert.equal(inst.state, State.MASTER);
  inst.setFault('interface eth1 down', true, 4100);
  assert.equal(inst.state, State.FAULT);
  assert.equal(log.adverts.at(-1), 0);
  inst.receive(advert(50), 4200);
  inst.tick(20_000);
  assert.equal(inst.state, State.FAULT, 'FAULT ignores adverts and timers');
  inst.setFault('interface eth1 down', false, 20_000);
  assert.equal(inst.state, State.BACKUP);
  inst.setWeight('service tcp 198.18.1.100:80', -60);
  assert.equal(inst.priority, 40);
  inst.setWeight('service tcp 198.18.1.100:80', -200);
  assert.equal(inst.priority, 1, 'clamped to 1..254');
  inst.setWeight('service tcp 198.18.1.100:80', 0);
  assert.equal(inst.priority, 100);
});

test('vrrp sync group: members go MASTER together, follow a member to BACKUP, and a fault takes all', () => {
  const events: string[] = [];
  const g = new VrrpSyncGroup('G', (_g, from, to) => events.push(`${STATE_NAMES[from]}->${STATE_NAMES[to]}`));
  const a = make({ name: 'VIP', vrid: 51 });
  const b = make({ name: 'DIP', vrid: 52, priority: 100 });
  g.add(a.inst);
  g.add(b.inst);
  a.inst.start(0);
  b.inst.start(0);
  g.started(0);
  // a's timer runs out first but b does not want MASTER yet: a waits.
  a.inst.tick(3700);
  assert.equal(a.inst.state, State.BACKUP);
  b.inst.tick(3700);
  assert.equal(b.inst.state, State.MASTER);
  assert.equal(a.inst.state, State.MASTER, 'b took a with it');
  // A better master on a's VRID takes the whole group back to BACKUP.
  a.inst.receive(advert(200, { vrid: 51 }), 3300);
  assert.equal(a.inst.state, State.BACKUP);
  assert.equal(b.inst.state, State.BACKUP);
  // A fault on b: both FAULT; cleared: both BACKUP.
  b.inst.setFault('interface eth2 down', true, 3400);
  assert.equal(a.inst.state, State.FAULT);
  b.inst.setFault('interface eth2 down', false, 3500);
  assert.equal(a.inst.state, State.BACKUP);
  assert.equal(b.inst.state, State.BACKUP);
  assert.deepEqual(events, ['INIT->BACKUP', 'BACKUP->MASTER', 'MASTER->BACKUP', 'BACKUP->FAULT', 'FAULT->BACKUP']);
});

test('vrrp instance: a v3 master that yields times the new master by the interval it advertises (RFC 5798 §6.4.3)', () => {
  const { inst } = make({ version: 3, priority: 100, adverIntCs: 100, initialMaster: true });
  inst.start(0);
  inst.tick(2000);
  assert.equal(inst.state, State.MASTER);
  inst.receive(advert(200, { version: 3, adverIntCs: 400 }), 3000);
  assert.equal(inst.state, State.BACKUP);
  assert.equal(inst.masterAdverIntCs, 400);
  assert.equal(inst.downAt, 3000 + 3 * 4000 + (156 * 4000) / 256);
});

test('vrrp instance: becoming master sends the advert before taking and announcing the addresses (as keepalived)', () => {
  const seq: string[] = [];
  const io: InstanceIo = {
    sendAdvert: (_i, p) => seq.push(`advert ${p}`),
    own: (_i, on) => seq.push(`own ${on}`),
    garp: (_i, n) => seq.push(`garp ${n}`),
    transition: () => {},
  };
  const inst = new VrrpInstance(spec(), io);
  inst.start(0);
  inst.tick(4000);
  assert.equal(inst.state, State.MASTER);
  assert.deepEqual(seq, ['advert 100', 'own true', 'garp 4']);
});

test('vrrp instance: a flood of lower-priority or priority-0 adverts is answered at most once per 100 ms; periodic adverts go on', () => {
  const { inst, log } = make({ initialMaster: true });
  inst.start(0);
  inst.tick(1004);
  assert.equal(inst.state, State.MASTER);
  const sent = log.adverts.length;
  // 1000 adverts in 500 ms (one every 0.5 ms), half of them priority 0.
  for (let k = 0; k < 1000; k++) {
    const t = 1100 + k / 2;
    inst.receive(advert(k % 2 ? 0 : 50), t);
    inst.tick(t);
  }
  const answers = log.adverts.length - sent;
  assert.ok(answers >= 5 && answers <= 6, `${answers} adverts sent for 1000 received`);
  assert.equal(inst.state, State.MASTER);
  inst.tick(2004);
  assert.equal(log.adverts.length - sent, answers + 1, 'the periodic advert is still sent');
});

test('vrrp instance: an address owner in state BACKUP waits Master_Down_Interval before taking over (keepalived)', () => {
  const { inst } = make({ priority: 255, initialMaster: false });
  inst.start(0);
  assert.equal(inst.state, State.BACKUP);
  inst.tick(3000);
  assert.equal(inst.state, State.BACKUP);
  inst.tick(3000 + 1000 / 256 + 1);
  assert.equal(inst.state, State.MASTER);
});

test('vrrp sync group: an address owner in a group waits for the group in BACKUP (never stuck in INIT, never MASTER alone after a fault)', () => {
  const g = new VrrpSyncGroup('G', () => {});
  const owner = make({ name: 'VIP', vrid: 51, priority: 255, initialMaster: true });
  const dip = make({ name: 'DIP', vrid: 52, priority: 100 });
  g.add(owner.inst);
  g.add(dip.inst);
  owner.inst.start(0);
  dip.inst.start(0);
  g.started(0);
  assert.equal(owner.inst.state, State.BACKUP, 'held back by the group, in BACKUP so its timer runs');
  assert.deepEqual(owner.log.own, [], 'the VIP is not taken without the DIP');
  dip.inst.tick(3610);
  assert.equal(dip.inst.state, State.MASTER);
  assert.equal(owner.inst.state, State.MASTER, 'both together');
  // A fault of the DIP's instance takes both to FAULT; cleared, the owner does not take the VIP alone.
  dip.inst.setFault('interface eth2 down', true, 4000);
  assert.equal(owner.inst.state, State.FAULT);
  dip.inst.setFault('interface eth2 down', false, 4100);
  assert.equal(owner.inst.state, State.BACKUP);
  assert.equal(dip.inst.state, State.BACKUP);
  assert.equal(g.state, State.BACKUP);
  owner.inst.tick(4110);
  assert.equal(owner.inst.state, State.BACKUP, 'the DIP still waits for its master down timer');
  dip.inst.tick(4100 + 3610);
  assert.equal(dip.inst.state, State.MASTER);
  assert.equal(owner.inst.state, State.MASTER);
  assert.equal(g.state, State.MASTER);
});
