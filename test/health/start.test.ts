// startHealth end to end on real sockets and the real clock: a keepalived.conf pool loses a dead server and gets it back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { parseKeepalivedText } from '../../src/ctl/keepalived.ts';
import { startHealth } from '../../src/health/index.ts';
import { waitFor } from '../../src/lab/netns.ts';
import { FakeDirector } from './fake.ts';

const listen = (port = 0) =>
  new Promise<Server>((resolve, reject) => {
    const s = createServer((c) => c.end());
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });

test('startHealth: a dead server leaves the table, comes back when it listens again', { timeout: 30_000 }, async () => {
  const live = await listen();
  const gone = await listen();
  const livePort = (live.address() as AddressInfo).port;
  const gonePort = (gone.address() as AddressInfo).port;
  await new Promise((r) => gone.close(r));
  const { config } = parseKeepalivedText(`
virtual_server 198.18.1.100 80 {
  lb_kind NAT
  delay_loop 0.05
  connect_timeout 0.5
  retry 1
  delay_before_retry 0.05
  warmup 0
  real_server 127.0.0.1 ${livePort} {
    TCP_CHECK {
    }
  }
  real_server 127.0.0.1 ${gonePort} {
    weight 2
    TCP_CHECK {
    }
  }
}
`);
  const dir = new FakeDirector();
  const svc = { type: 'tcp' as const, addr: '198.18.1.100', port: 80 };
  dir.addService(svc, config.services[0]!.realservers.map((r) => ({ addr: r.address, port: r.port!, fwd: 'masq' as const, weight: r.weight, uThreshold: 0, lThreshold: 0, tunType: 'ipip' as const, tunPort: 0, tunCsum: 'nocsum' as const })));
  const logs: string[] = [];
  const h = await startHealth(config, dir.handler, (_l, msg) => logs.push(msg));
  let back: Server | null = null;
  try {
    await waitFor('the dead server to be removed', () => dir.table(svc).length === 1, 10_000);
    assert.deepEqual(dir.table(svc), [`127.0.0.1:${livePort}=1`]);
    const snap = h.snapshot().pools[0]!.servers[1]!;
    assert.equal(snap.state, 'down');
    assert.match(snap.lastDetail, /ECONNREFUSED/);
    back = await listen(gonePort);
    await waitFor('the server to return', () => dir.table(svc).length === 2, 10_000);
    assert.ok(dir.table(svc).includes(`127.0.0.1:${gonePort}=2`));
    assert.equal(logs.filter((l) => l.includes(`:${gonePort} is down`)).length, 1);
    assert.equal(logs.filter((l) => l.includes(`:${gonePort} is up`)).length, 1);
  } finally {
    await h.stop();
    live.close();
    back?.close();
  }
});
