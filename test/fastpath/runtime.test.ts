// FastPath.open on ports that cannot take the fast path: auto logs one line and runs without it, tc refuses to start.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { FastPath } from '../../src/fastpath/runtime.ts';
import { setup } from './harness.ts';

test('auto on memory ports: one warning, no fast path, the TS path untouched; tc: an error; off: nothing', () => {
  const { dp } = setup('nat');
  const logs: string[] = [];
  const fp = FastPath.open('auto', dp.director.ports, dp, (level, msg) => logs.push(`${level} ${msg}`));
  assert.equal(fp, null);
  assert.deepEqual(logs, ['warn fast path off (the packet-socket path carries everything): interface lan0 is not an AF_PACKET port (io memory)']);
  assert.equal(dp.path.onForwarded, null, 'no hook left behind');
  assert.equal(dp.ipvs.conns.onUnhash, null);
  assert.throws(() => FastPath.open('tc', dp.director.ports, dp, () => {}), /--fastpath tc: interface lan0 is not an AF_PACKET port/);
  const quiet: string[] = [];
  assert.equal(FastPath.open('off', dp.director.ports, dp, (_l, m) => quiet.push(m)), null);
  assert.deepEqual(quiet, []);
});
