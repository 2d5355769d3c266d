// The lab router's resilient-ECMP plan: from BIRD's table and what is programmed, the ip -batch lines that make them agree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { planResilient, parseBirdRoutes, parseNexthops, GROUP_BASE, RESILIENT_PROTO as P, BUCKETS, METRIC } from '../../src/lab/resilient-fib.ts';

const hop = (n: number) => ({ gateway: `198.18.1.${n}`, dev: 'lan0' });
const G = GROUP_BASE;

test('planResilient: a new route gets one nexthop per hop, a resilient group and a route through it', () => {
  assert.deepEqual(planResilient({ bird: [{ dst: '198.18.1.100', hops: [hop(2), hop(3)] }], nexthops: [], routes: [] }), [
    `nexthop add id 1 via 198.18.1.2 dev lan0 proto ${P}`,
    `nexthop add id 2 via 198.18.1.3 dev lan0 proto ${P}`,
    `nexthop replace id ${G} group 1/2 type resilient buckets ${BUCKETS} idle_timer 0 proto ${P}`,
    `route replace 198.18.1.100/32 nhid ${G} proto ${P} metric ${METRIC}`,
  ]);
});

test('planResilient: in step with BIRD, nothing to do; a member joins or leaves by replacing the same group', () => {
  const nexthops = [
    { id: 1, ...hop(2) },
    { id: 2, ...hop(3) },
    { id: G, group: [2, 1] },
  ];
  const routes = [{ dst: '198.18.1.100', nhid: G }];
  assert.deepEqual(planResilient({ bird: [{ dst: '198.18.1.100/32', hops: [hop(3), hop(2)] }], nexthops, routes }), []);
  assert.deepEqual(planResilient({ bird: [{ dst: '198.18.1.100/32', hops: [hop(2), hop(3), hop(4)] }], nexthops, routes }), [
    `nexthop add id 3 via 198.18.1.4 dev lan0 proto ${P}`,
    `nexthop replace id ${G} group 1/2/3 type resilient buckets ${BUCKETS} idle_timer 0 proto ${P}`,
  ]);
  assert.deepEqual(planResilient({ bird: [{ dst: '198.18.1.100/32', hops: [hop(3)] }], nexthops, routes }), [
    `nexthop replace id ${G} group 2 type resilient buckets ${BUCKETS} idle_timer 0 proto ${P}`,
    'nexthop del id 1',
  ]);
});

test('planResilient: a route BIRD no longer has goes, then its group and next hops; ids in use are not reused', () => {
  const nexthops = [
    { id: 1, ...hop(2) },
    { id: 3, ...hop(3) },
    { id: G, group: [1, 3] },
  ];
  assert.deepEqual(planResilient({ bird: [], nexthops, routes: [{ dst: '198.18.1.100', nhid: G }] }), [
    `route del 198.18.1.100/32 proto ${P} metric ${METRIC}`,
    `nexthop del id ${G}`,
    'nexthop del id 1',
    'nexthop del id 3',
  ]);
  const two = planResilient({ bird: [{ dst: '198.18.1.100', hops: [hop(2), hop(3)] }, { dst: '198.18.1.101', hops: [hop(4)] }], nexthops, routes: [{ dst: '198.18.1.100', nhid: G }] });
  assert.deepEqual(two, [
    `nexthop add id 2 via 198.18.1.4 dev lan0 proto ${P}`,
    `nexthop replace id ${G + 1} group 2 type resilient buckets ${BUCKETS} idle_timer 0 proto ${P}`,
    `route replace 198.18.1.101/32 nhid ${G + 1} proto ${P} metric ${METRIC}`,
  ]);
});

test('parseBirdRoutes / parseNexthops read ip -j output (single and multipath routes, groups)', () => {
  assert.deepEqual(
    parseBirdRoutes('[{"dst":"198.18.1.100","gateway":"198.18.1.2","dev":"lan0","protocol":"bird","flags":[]},{"dst":"198.18.1.101","protocol":"bird","flags":[],"nexthops":[{"gateway":"198.18.1.2","dev":"lan0","weight":1,"flags":[]},{"gateway":"198.18.1.3","dev":"lan0","weight":1,"flags":[]}]}]\n'),
    [
      { dst: '198.18.1.100', hops: [hop(2)] },
      { dst: '198.18.1.101', hops: [hop(2), hop(3)] },
    ],
  );
  assert.deepEqual(parseBirdRoutes('\n'), []);
  assert.deepEqual(
    parseNexthops('[{"id":1,"gateway":"198.18.1.2","dev":"lan0","scope":"link","protocol":"240","flags":[]},{"id":65536,"group":[{"id":1},{"id":2}],"type":"resilient","resilient_args":{"buckets":128,"idle_timer":0,"unbalanced_timer":0,"unbalanced_time":0},"protocol":"240","flags":[]}]'),
    [{ id: 1, ...hop(2) }, { id: 65536, group: [1, 2] }],
  );
});
