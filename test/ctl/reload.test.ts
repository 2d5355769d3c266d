// Reload planning: the difference as requests, and undo requests that restore the old state exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { parseConfigText } from '../../src/ctl/config.ts';
import { planReload, checkServices, benignReloadError } from '../../src/ctl/reload.ts';
import type { Request, RequestBody } from '../../src/ctl/protocol.ts';

const OLD = `interfaces: [lan0]
addresses: ["198.18.1.100/32@lan0", "198.18.1.2/24@lan0"]
timeouts: { tcp: 900 }
services:
  - protocol: tcp
    address: 198.18.1.100
    port: 80
    scheduler: rr
    realservers: [{ address: 198.18.1.11, weight: 1 }, { address: 198.18.1.12, weight: 2 }]
  - protocol: udp
    address: 198.18.1.100
    port: 53
    realservers: [{ address: 198.18.1.11 }]
`;
const NEW = `interfaces: [lan0]
addresses: ["198.18.1.100/32@lan0", "198.18.1.2/24@lan0", "198.18.1.101/32@lan0"]
timeouts: { tcp: 600 }
services:
  - protocol: tcp
    address: 198.18.1.100
    port: 80
    scheduler: wlc
    realservers: [{ address: 198.18.1.11, weight: 5 }, { address: 198.18.1.13 }]
  - protocol: tcp
    address: 198.18.1.101
    port: 443
    realservers: [{ address: 198.18.1.11 }]
`;

function director(cfg: string) {
  const dp = new Dataplane([new MemoryPort('lan0')], parseConfigText(cfg), () => {});
  let id = 0;
  const ask = (b: RequestBody) => dp.handle({ v: 1, id: ++id, ...b } as Request);
  const state = () => JSON.stringify([ask({ op: 'list' }), ask({ op: 'address-list' }), ask({ op: 'get-timeout' })]);
  return { dp, ask, state };
}

test('reload: the plan turns the old director into the new one, counted', () => {
  const plan = planReload(parseConfigText(OLD), parseConfigText(NEW));
  assert.deepEqual(plan.summary, { servicesAdded: 1, servicesRemoved: 1, servicesChanged: 1, serversAdded: 1, serversRemoved: 1, serversChanged: 1, addresses: 1 });
  assert.deepEqual(plan.restartNeeded, []);
  const a = director(OLD);
  for (const r of plan.requests) assert.equal(a.ask(r).ok, true, JSON.stringify(r));
  const b = director(NEW);
  const strip = (s: string) => s.replace(/"id":\d+/g, '');
  assert.equal(strip(a.state()), strip(b.state()), 'same services, real servers, addresses and timeouts as a fresh start with the new file');
});

test('reload: undoing every applied step, newest first, restores the old director exactly', () => {
  const plan = planReload(parseConfigText(OLD), parseConfigText(NEW), { tcp: 900, tcpfin: 120, udp: 300 });
  for (let k = 1; k <= plan.requests.length; k++) {
    const a = director(OLD);
    const before = a.state();
    for (let i = 0; i < k; i++) assert.equal(a.ask(plan.requests[i]!).ok, true);
    for (let i = k - 1; i >= 0; i--) for (const u of plan.undo[i]!) assert.equal(a.ask(u).ok, true, JSON.stringify(u));
    assert.equal(a.state().replace(/"id":\d+/g, ''), before.replace(/"id":\d+/g, ''), `after undoing ${k} step(s)`);
  }
});

test('reload: an unknown scheduler or a bad threshold is refused before anything is applied; benign refusals', () => {
  assert.throws(() => checkServices(parseConfigText(NEW.replace('scheduler: wlc', 'scheduler: nosuch'))), /service tcp:198\.18\.1\.100:80: Scheduler or persistence engine not found/);
  assert.doesNotThrow(() => checkServices(parseConfigText(NEW)));
  assert.equal(benignReloadError({ op: 'delete-server', service: { type: 'tcp', addr: '198.18.1.100', port: 80 }, dest: { addr: '198.18.1.12', port: 80 } }, 'ENOENT'), true);
  assert.equal(benignReloadError({ op: 'add-service', service: { type: 'tcp', addr: '198.18.1.100', port: 80 }, config: {} as never }, 'EEXIST'), false);
});
