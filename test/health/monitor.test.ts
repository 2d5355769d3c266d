// The health monitor's state machine on a fake clock: fall/rise, retry delay, inhibit vs remove, sorry server, quorum with hysteresis, alpha, omega.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfigText } from '../../src/ctl/config.ts';
import { planHealth } from '../../src/health/plan.ts';
import { HealthMonitor, type HealthLogLevel } from '../../src/health/monitor.ts';
import type { CheckResult, CheckSpec } from '../../src/health/checks.ts';
import type { ServiceKey } from '../../src/ctl/protocol.ts';
import { FakeClock, FakeDirector } from './fake.ts';

const SVC: ServiceKey = { type: 'tcp', addr: '198.18.1.100', port: 80 };

function yaml(service: string, servers: string[]): string {
  return `services:
  - protocol: tcp
    address: 198.18.1.100
    port: 80
    scheduler: rr
${service.split('\n').filter(Boolean).map((l) => '    ' + l).join('\n')}
    realservers:
${servers.map((s) => '      - ' + s).join('\n')}
`;
}

/** A monitor over a fake director; `down` holds the hosts whose probes fail. */
function setup(text: string) {
  const config = parseConfigText(text, 't.yaml');
  const plans = planHealth(config);
  const clock = new FakeClock();
  const dir = new FakeDirector();
  // The data plane adds every configured real server at start, as tsvsd does.
  dir.addService(SVC, plans[0]!.servers.map((s) => s.dest));
  const down = new Set<string>();
  const weights = new Map<string, number>();
  const probes: CheckSpec[] = [];
  const logs: Array<{ level: HealthLogLevel; msg: string }> = [];
  const scripts: string[] = [];
  const probe = async (spec: CheckSpec): Promise<CheckResult> => {
    probes.push(spec);
    if (down.has(spec.host)) return { ok: false, latencyMs: 1, detail: 'connect failed: ECONNREFUSED' };
    const w = weights.get(spec.host);
    return w === undefined ? { ok: true, latencyMs: 1, detail: 'connected' } : { ok: true, latencyMs: 1, detail: `exit ${w + 2}`, weight: w };
  };
  const mon = new HealthMonitor(plans, {
    handler: dir.handler,
    log: (level, msg) => logs.push({ level, msg }),
    clock,
    probe,
    runScript: async (cmd) => void scripts.push(cmd),
    resyncMs: 3000,
  });
  return { mon, dir, clock, down, weights, probes, logs, scripts, plans };
}

const CHECK = 'check: { type: tcp, interval: 10, timeout: 1, fall: 2, rise: 2, delay_before_retry: 2 }';

test('monitor: fall after retries removes the server, rise successes bring it back, one log line each', async () => {
  const t = setup(yaml('', [`{ address: 198.18.2.11, weight: 3, ${CHECK} }`, `{ address: 198.18.2.12, ${CHECK} }`]));
  await t.mon.start();
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=3', '198.18.2.12:80=1']);
  await t.clock.advance(0);
  assert.equal(t.probes.length, 2);
  t.down.add('198.18.2.11');
  await t.clock.advance(10_000); // first failure: still in, retried after delay_before_retry
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=3', '198.18.2.12:80=1']);
  await t.clock.advance(2_000); // second failure = fall
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.12:80=1']);
  const downLogs = t.logs.filter((l) => /198\.18\.2\.11:80 is down/.test(l.msg));
  assert.equal(downLogs.length, 1);
  assert.match(downLogs[0]!.msg, /\(connect failed: ECONNREFUSED\); removed$/);
  // Staying down logs nothing more.
  await t.clock.advance(30_000);
  assert.equal(t.logs.filter((l) => /is down/.test(l.msg)).length, 1);
  let snap = t.mon.snapshot().pools[0]!.servers[0]!;
  assert.equal(snap.state, 'down');
  assert.equal(snap.weight, null);
  assert.equal(snap.lastChange, 1_000_000 + 12_000);
  assert.ok(snap.failures >= 4);
  t.down.delete('198.18.2.11');
  await t.clock.advance(10_000); // one success: rise is 2
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.12:80=1']);
  await t.clock.advance(10_000);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=3', '198.18.2.12:80=1']);
  assert.equal(t.logs.filter((l) => /198\.18\.2\.11:80 is up/.test(l.msg)).length, 1);
  snap = t.mon.snapshot().pools[0]!.servers[0]!;
  assert.equal(snap.state, 'up');
  assert.equal(snap.transitions, 2);
  assert.equal(t.mon.snapshot().counters.transitions, 2);
  await t.mon.stop();
});

test('monitor: a failure followed by a success does not take the server out', async () => {
  const t = setup(yaml('', [`{ address: 198.18.2.11, ${CHECK} }`]));
  await t.mon.start();
  await t.clock.advance(0);
  t.down.add('198.18.2.11');
  await t.clock.advance(10_000);
  t.down.delete('198.18.2.11');
  await t.clock.advance(2_000);
  t.down.add('198.18.2.11');
  await t.clock.advance(10_000);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=1']);
  assert.equal(t.mon.snapshot().counters.transitions, 0);
  await t.mon.stop();
});

test('monitor: inhibit_on_failure sets weight 0 and restores the configured weight', async () => {
  const t = setup(yaml('', [`{ address: 198.18.2.11, weight: 5, inhibit_on_failure: true, ${CHECK} }`, '{ address: 198.18.2.12 }']));
  await t.mon.start();
  await t.clock.advance(0);
  t.down.add('198.18.2.11');
  await t.clock.advance(12_000);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=0', '198.18.2.12:80=1']);
  assert.ok(t.dir.requests.some((r) => r.op === 'edit-server' && r.dest.weight === 0));
  assert.ok(!t.dir.requests.some((r) => r.op === 'delete-server'));
  assert.match(t.logs.find((l) => /is down/.test(l.msg))!.msg, /inhibited \(weight 0\)/);
  t.down.delete('198.18.2.11');
  await t.clock.advance(20_000);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=5', '198.18.2.12:80=1']);
  await t.mon.stop();
});

test('monitor: sorry server replaces the pool while nothing is up and leaves when one server returns', async () => {
  const t = setup(
    yaml('sorry_server: { address: 198.18.2.99, port: 8080 }', [
      `{ address: 198.18.2.11, port: 8080, method: nat, ${CHECK} }`,
      `{ address: 198.18.2.12, port: 8080, method: nat, ${CHECK} }`,
    ]),
  );
  await t.mon.start();
  await t.clock.advance(0);
  t.down.add('198.18.2.11');
  await t.clock.advance(12_000);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.12:8080=1']);
  t.down.add('198.18.2.12');
  await t.clock.advance(12_000);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.99:8080=1']);
  let pool = t.mon.snapshot().pools[0]!;
  assert.equal(pool.quorumUp, false);
  assert.equal(pool.sorryActive, true);
  assert.equal(t.logs.filter((l) => /lost quorum.*sorry server 198\.18\.2\.99:8080 in/.test(l.msg)).length, 1);
  t.down.delete('198.18.2.12');
  await t.clock.advance(20_000);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.12:8080=1']);
  pool = t.mon.snapshot().pools[0]!;
  assert.equal(pool.quorumUp, true);
  assert.equal(pool.sorryActive, false);
  await t.mon.stop();
});

test('monitor: with a sorry server and inhibit, live servers go to weight 0 while the sorry server serves', async () => {
  const t = setup(
    yaml('sorry_server: { address: 198.18.2.99 }\nquorum: 2', [
      `{ address: 198.18.2.11, inhibit_on_failure: true, ${CHECK} }`,
      `{ address: 198.18.2.12, inhibit_on_failure: true, ${CHECK} }`,
    ]),
  );
  await t.mon.start();
  await t.clock.advance(0);
  t.down.add('198.18.2.11');
  await t.clock.advance(12_000);
  // Live weight 1 < quorum 2: 198.18.2.12 is still up but steps aside for the sorry server.
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=0', '198.18.2.12:80=0', '198.18.2.99:80=1']);
  assert.equal(t.mon.snapshot().pools[0]!.servers[1]!.state, 'up');
  await t.mon.stop();
});

test('monitor: quorum with hysteresis flips only past quorum±hysteresis and runs quorum_up/quorum_down once', async () => {
  const t = setup(
    yaml('quorum: 2\nhysteresis: 1\nquorum_up: /bin/up.sh\nquorum_down: /bin/down.sh', [
      `{ address: 198.18.2.11, ${CHECK} }`,
      `{ address: 198.18.2.12, ${CHECK} }`,
      `{ address: 198.18.2.13, ${CHECK} }`,
    ]),
  );
  await t.mon.start();
  await t.clock.advance(0);
  assert.equal(t.mon.snapshot().pools[0]!.quorumUp, true); // 3 >= 2+1
  const step = async (host: string, isDown: boolean) => {
    if (isDown) t.down.add(host);
    else t.down.delete(host);
    await t.clock.advance(20_000);
  };
  await step('198.18.2.11', true); // 2 >= 1
  await step('198.18.2.12', true); // 1, not < 2-1
  assert.equal(t.mon.snapshot().pools[0]!.quorumUp, true);
  assert.deepEqual(t.scripts, []);
  await step('198.18.2.13', true); // 0: lost
  assert.equal(t.mon.snapshot().pools[0]!.quorumUp, false);
  assert.deepEqual(t.scripts, ['/bin/down.sh']);
  await step('198.18.2.11', false); // 1 < 3
  await step('198.18.2.12', false); // 2 < 3
  assert.equal(t.mon.snapshot().pools[0]!.quorumUp, false);
  await step('198.18.2.13', false); // 3 >= 3: gained
  assert.equal(t.mon.snapshot().pools[0]!.quorumUp, true);
  assert.deepEqual(t.scripts, ['/bin/down.sh', '/bin/up.sh']);
  assert.equal(t.mon.snapshot().counters.quorumChanges, 2);
  await t.mon.stop();
});

test('monitor: alpha starts servers down (out of the table, sorry server in) until their checks pass', async () => {
  const t = setup(
    yaml('alpha: true\nsorry_server: { address: 198.18.2.99 }\nquorum_down: /bin/down.sh', [
      '{ address: 198.18.2.11, check: { type: tcp, interval: 10, rise: 1 } }',
      '{ address: 198.18.2.12, check: { type: tcp, interval: 10, rise: 1 } }',
    ]),
  );
  await t.mon.start();
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.99:80=1']);
  assert.deepEqual(t.scripts, ['/bin/down.sh']);
  assert.equal(t.mon.snapshot().pools[0]!.servers[0]!.state, 'down');
  t.down.add('198.18.2.12');
  await t.clock.advance(0);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=1']);
  await t.mon.stop();
});

test('monitor: omega runs quorum_down and notify_down on stop; removeServers clears the pool; without omega nothing runs', async () => {
  const t = setup(
    yaml('omega: true\nquorum_down: /bin/down.sh', [`{ address: 198.18.2.11, notify_down: /bin/rs-down.sh, ${CHECK} }`]),
  );
  await t.mon.start();
  await t.clock.advance(0);
  await t.mon.stop({ removeServers: true });
  assert.deepEqual(t.scripts.sort(), ['/bin/down.sh', '/bin/rs-down.sh']);
  assert.deepEqual(t.dir.table(SVC), []);
  const n = t.probes.length;
  await t.clock.advance(60_000);
  assert.equal(t.probes.length, n, 'no probes after stop');

  const u = setup(yaml('quorum_down: /bin/down.sh', [`{ address: 198.18.2.11, ${CHECK} }`]));
  await u.mon.start();
  await u.mon.stop();
  assert.deepEqual(u.scripts, []);
  assert.deepEqual(u.dir.table(SVC), ['198.18.2.11:80=1']);
});

test('monitor: misc_dynamic weights are applied while up and count towards quorum', async () => {
  const t = setup(yaml('', ['{ address: 198.18.2.11, weight: 2, check: { type: misc, command: "true", dynamic: true, interval: 10 } }']));
  await t.mon.start();
  t.weights.set('198.18.2.11', 7);
  await t.clock.advance(0);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=7']);
  assert.equal(t.mon.snapshot().pools[0]!.liveWeight, 7);
  t.weights.set('198.18.2.11', 4);
  await t.clock.advance(10_000);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=4']);
  await t.mon.stop();
});

test('monitor: a refused control request is logged, counted and retried after a resync', async () => {
  const t = setup(yaml('', [`{ address: 198.18.2.11, ${CHECK} }`, '{ address: 198.18.2.12 }']));
  await t.mon.start();
  await t.clock.advance(0);
  t.down.add('198.18.2.11');
  t.dir.failNext = 1;
  await t.clock.advance(12_000);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.11:80=1', '198.18.2.12:80=1']);
  assert.equal(t.mon.snapshot().counters.requestErrors, 1);
  assert.ok(t.logs.some((l) => l.level === 'error' && /delete-server 198\.18\.2\.11:80 failed: injected failure/.test(l.msg)));
  await t.clock.advance(3_000);
  assert.deepEqual(t.dir.table(SVC), ['198.18.2.12:80=1']);
  await t.mon.stop();
});

test('plan: DR servers are checked on the service port, NAT on their own; tsvs defaults fill in', () => {
  const c = parseConfigText(yaml('', ['{ address: 198.18.2.11 }']), 't.yaml');
  assert.equal(planHealth(c).length, 0, 'no checks, no pool');
  const plans = planHealth(
    parseConfigText(
      yaml('', [
        '{ address: 198.18.2.11, port: 8080, method: dr, check: { type: tcp } }',
        '{ address: 198.18.2.12, port: 8080, method: nat, check: { type: http, path: /health, status: "200-299 301" } }',
      ]),
    ),
  );
  const [a, b] = plans[0]!.servers;
  assert.equal(a!.dest.port, 80);
  assert.equal(a!.checks[0]!.spec.port, 80);
  assert.equal(a!.dest.fwd, 'route');
  assert.equal(b!.dest.port, 8080);
  assert.equal(b!.dest.fwd, 'masq');
  assert.deepEqual(b!.checks[0]!.spec.status, [[200, 299], [301, 301]]);
  assert.equal(a!.checks[0]!.intervalMs, 5000);
  assert.equal(a!.checks[0]!.fall, 2);
  assert.equal(a!.checks[0]!.retryDelayMs, 1000);
  assert.equal(b!.checks[0]!.retryDelayMs, 3000);
});
