// The lab router's resilient-ECMP programmer against the kernel: BIRD's table mirrored into a resilient nexthop group; a 4th next hop takes exactly its share of buckets, a leaving one gives up only its own.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNetns, waitFor, withNetns, type Netns } from '../../src/lab/netns.ts';
import { moduleCommand } from '../../src/root.ts';
import { BIRD_TABLE, BUCKETS, RESILIENT_PROTO, groupBuckets } from '../../src/lab/resilient-fib.ts';

const skip = !canUseNetns() ? 'needs root' : false;
const DST = '198.18.1.100/32';

const buckets = (n: Netns) => groupBuckets(n.ns('r'), DST);

/** Sets BIRD's table route for DST as BIRD's kernel protocol does (one multipath route). */
async function birdRoute(n: Netns, hosts: number[]): Promise<void> {
  if (hosts.length === 0) await n.ip('r', 'route', 'del', DST, 'table', String(BIRD_TABLE));
  else await n.ip('r', 'route', 'replace', DST, 'table', String(BIRD_TABLE), 'proto', 'bird', ...hosts.flatMap((h) => ['nexthop', 'via', `198.18.1.${h}`, 'dev', 'lan0']));
}

/** How many buckets each next hop owns, smallest first. */
const shares = (b: string[]) => [...new Set(b)].map((g) => b.filter((x) => x === g).length).sort((x, y) => x - y);

test('resilient-fib: 3 -> 4 next hops moves 1/4 of the buckets, all to the new one; a withdrawn one gives up only its own', { skip, timeout: 30_000 }, () =>
  withNetns('resfib', async (n) => {
    await n.add('r');
    await n.add('s');
    await n.veth('r', 'lan0', 's', 'eth0');
    await n.ip('r', 'addr', 'add', '198.18.1.1/24', 'dev', 'lan0');
    const p = n.spawn('r', moduleCommand(import.meta.url, '../../src/lab/resilient-fib-main'));
    let log = '';
    p.stdout!.setEncoding('utf8').on('data', (c: string) => (log += c));
    p.stderr!.setEncoding('utf8').on('data', (c: string) => (log += c));
    await waitFor('resilient-fib ready', () => /^ready resilient-fib/m.test(log), 15_000);

    await birdRoute(n, [2, 3, 4]);
    await waitFor('a group of 3', async () => new Set(await buckets(n)).size === 3, 5000, 20);
    const three = await buckets(n);
    assert.equal(three.length, BUCKETS);
    assert.deepEqual(shares(three), [42, 43, 43]);
    assert.deepEqual([...new Set(three)].sort(), ['198.18.1.2', '198.18.1.3', '198.18.1.4']);

    await birdRoute(n, [2, 3, 4, 5]);
    await waitFor('a group of 4', async () => new Set(await buckets(n)).size === 4, 5000, 20);
    const four = await buckets(n);
    const moved = four.filter((g, i) => g !== three[i]);
    assert.equal(moved.length, BUCKETS / 4, 'exactly the new next hop\'s share moved');
    assert.ok(moved.every((g) => g === '198.18.1.5'), 'every moved bucket went to the new next hop');
    assert.deepEqual(shares(four), [32, 32, 32, 32]);

    await birdRoute(n, [2, 4, 5]);
    await waitFor('a group of 3 again', async () => !(await buckets(n)).includes('198.18.1.3'), 5000, 20);
    const less = await buckets(n);
    for (let i = 0; i < BUCKETS; i++) if (four[i] !== '198.18.1.3') assert.equal(less[i], four[i], `bucket ${i} stays with ${four[i]}`);
    assert.equal((await n.ip('r', 'nexthop', 'show', 'protocol', String(RESILIENT_PROTO))).includes('198.18.1.3'), false, 'its nexthop object is gone');

    await birdRoute(n, []);
    await waitFor('route gone', async () => (await buckets(n)).length === 0, 5000, 20);
    assert.equal((await n.ip('r', 'nexthop', 'show', 'protocol', String(RESILIENT_PROTO))).trim(), '', 'no nexthop object left');
    await n.stop(p);
  }),
);
