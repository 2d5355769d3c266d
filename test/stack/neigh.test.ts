// The neighbour cache: queue while resolving, flush on reply, retry, fail, stale re-probe.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { NeighbourCache, NeighState, NEIGH_DROP } from '../../src/stack/neigh.ts';

function setup() {
  const arps: Array<[number, number]> = [];
  const sent: Array<{ port: number; bytes: number[]; mac: number[] }> = [];
  const c = new NeighbourCache(
    {
      sendArpRequest: (port, ip) => arps.push([port, ip]),
      transmitQueued: (port, buf, off, len, mac) => sent.push({ port, bytes: [...buf.subarray(off, off + len)], mac: [...mac] }),
    },
    { poolFrames: 4, poolFrameSize: 64, queuePerNeighbour: 2, retransMs: 1000, maxProbes: 3, reachableMs: 30_000 },
  );
  return { c, arps, sent };
}
const mac = Uint8Array.from([2, 0, 0, 0, 0, 9]);

test('neigh: frames queue while resolving and go out when the reply arrives', () => {
  const { c, arps, sent } = setup();
  const f = Uint8Array.from([1, 2, 3, 4]);
  assert.equal(c.lookup(7, 1, f, 0, 4, 0), null);
  assert.equal(c.lookup(7, 1, f, 1, 3, 10), null);
  assert.equal(c.lookup(7, 1, f, 0, 4, 20), null); // third frame: queue of 2 is full
  assert.equal(c.drops[NEIGH_DROP.queueFull], 1);
  assert.deepEqual(arps, [[1, 7]]); // one request, not one per frame
  c.learn(7, 1, mac, 0, 50, false);
  assert.deepEqual(sent.map((s) => s.bytes), [[1, 2, 3, 4], [2, 3, 4]]);
  assert.deepEqual(sent[0]!.mac, [...mac]);
  assert.deepEqual([...c.lookup(7, 1, f, 0, 4, 60)!], [...mac]);
});

test('neigh: retries, then fails and drops, then tries again after the hold time', () => {
  const { c, arps } = setup();
  const f = new Uint8Array(8);
  c.lookup(9, 0, f, 0, 8, 0);
  c.tick(1000);
  c.tick(2000);
  assert.equal(arps.length, 3);
  c.tick(3000);
  assert.equal(c.get(9)!.state, NeighState.Failed);
  assert.equal(c.drops[NEIGH_DROP.expiredInQueue], 1);
  assert.equal(c.lookup(9, 0, f, 0, 8, 3500), null);
  assert.equal(c.drops[NEIGH_DROP.failed], 1);
  c.lookup(9, 0, f, 0, 8, 9000);
  assert.equal(c.get(9)!.state, NeighState.Incomplete);
  assert.equal(arps.length, 4);
});

test('neigh: a stale entry is still used while it is re-probed; oversize frames are not queued', () => {
  const { c, arps } = setup();
  c.learn(5, 2, mac, 0, 0, true);
  const f = new Uint8Array(100);
  assert.ok(c.lookup(5, 2, f, 0, 10, 40_000));
  assert.equal(c.get(5)!.state, NeighState.Stale);
  assert.deepEqual(arps, [[2, 5]]);
  c.lookup(6, 2, f, 0, 100, 0);
  assert.equal(c.drops[NEIGH_DROP.tooBig], 1);
});
