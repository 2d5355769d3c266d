// Reload with FullNAT local addresses: laddrs are added before the real servers that need them, removed, and undone exactly.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { parseConfigText } from '../../src/ctl/config.ts';
import { planReload } from '../../src/ctl/reload.ts';
import type { Request, RequestBody } from '../../src/ctl/protocol.ts';

const base = (laddrs: string, rs: string) => `interfaces: [lan0, nat0]
addresses: ["198.18.1.100/32@lan0", "198.18.1.2/24@lan0", "198.18.2.1/24@nat0"]
services:
  - protocol: tcp
    address: 198.18.1.100
    port: 80
    scheduler: rr
    laddrs: ${laddrs}
    realservers: ${rs}
`;
const OLD = base('[{ address: 198.18.2.50, interface: nat0 }]', '[{ address: 198.18.2.11, port: 8080, method: fullnat }]');
const NEW = base('[{ address: 198.18.2.51 }, { address: 198.18.2.52, interface: nat0 }]', '[{ address: 198.18.2.11, port: 8080, method: fullnat }, { address: 198.18.2.12, port: 8080, method: fullnat }]');

function director(cfg: string) {
  const dp = new Dataplane([new MemoryPort('lan0'), new MemoryPort('nat0')], parseConfigText(cfg), () => {});
  let id = 0;
  const ask = (b: RequestBody) => dp.handle({ v: 1, id: ++id, ...b } as Request);
  const state = () => JSON.stringify([ask({ op: 'list' }), ask({ op: 'laddr-list' }), ask({ op: 'address-list' })]).replace(/"id":\d+/g, '');
  return { ask, state };
}

test('config: fullnat real servers need laddrs; the file is refused with the field', () => {
  assert.throws(() => parseConfigText(base('[]', '[{ address: 198.18.2.11, method: fullnat }]'), 'x.yaml'), /laddrs/);
});

test('reload: the plan gives the same director as a fresh start, and every prefix undoes exactly', () => {
  const plan = planReload(parseConfigText(OLD), parseConfigText(NEW));
  const a = director(OLD);
  for (const r of plan.requests) assert.equal(a.ask(r).ok, true, JSON.stringify(r));
  assert.equal(a.state(), director(NEW).state());
  for (let k = 1; k <= plan.requests.length; k++) {
    const b = director(OLD);
    const before = b.state();
    for (let i = 0; i < k; i++) assert.equal(b.ask(plan.requests[i]!).ok, true);
    for (let i = k - 1; i >= 0; i--) for (const u of plan.undo[i]!) assert.equal(b.ask(u).ok, true, JSON.stringify(u));
    assert.equal(b.state(), before, `after undoing ${k} step(s)`);
  }
});
