// Longest-prefix match over connected and static routes.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RouteTable } from '../../src/stack/route.ts';
import { ipToU32 as ip } from '../../src/lib/inet.ts';

test('route: longest prefix wins, default route last, removal', () => {
  const t = new RouteTable();
  t.add(ip('198.18.1.0'), 24, 0, 0);
  t.add(ip('198.18.2.0'), 24, 0, 1);
  t.add(ip('198.19.0.0'), 16, ip('198.18.1.1'), 0);
  t.add(ip('198.19.0.128'), 25, ip('198.18.1.2'), 0);
  t.add(0, 0, ip('198.18.1.1'), 0);
  assert.equal(t.lookup(ip('198.18.2.11'))!.port, 1);
  assert.equal(t.lookup(ip('198.18.1.77'))!.gateway, 0);
  assert.equal(t.lookup(ip('198.19.0.11'))!.gateway, ip('198.18.1.1'));
  assert.equal(t.lookup(ip('198.19.0.200'))!.gateway, ip('198.18.1.2'));
  assert.equal(t.lookup(ip('8.8.8.8'))!.len, 0);
  assert.ok(t.remove(0, 0));
  assert.equal(t.lookup(ip('8.8.8.8')), undefined);
  assert.equal(t.list().length, 4);
});
