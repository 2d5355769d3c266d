// tsvsd end to end, FullNAT: real servers on a routed network with the router as gateway, exact rr shares, 8 MB both ways, UDP, LIP seen by the servers.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNetns } from '../../src/lab/netns.ts';
import { LAB } from '../../src/lab/topology.ts';
import { withDirectorLab, VIP } from './director-harness.ts';
import { checkForwarding } from './director-checks.ts';

test('director FullNAT: TCP (port mapped 8080→80) and UDP to remote real servers whose gateway is the router', { skip: !canUseNetns() && 'needs root', timeout: 180_000 }, async () => {
  await withDirectorLab('fullnat', async (d) => {
    const rs = d.lab.realServers;
    for (const r of rs) {
      const route = await d.lab.sh(r.role, 'ip route show default');
      assert.match(route, new RegExp(`default via ${LAB.routerRemote.replace(/\./g, '\\.')} `), `${r.role}'s gateway is the router, not the director`);
    }
    await d.restore(
      [
        `-A -t ${VIP}:8080 -s rr`, `-P -t ${VIP}:8080 -z ${LAB.lip} -F lan0`, ...rs.map((r) => `-a -t ${VIP}:8080 -r ${r.ip}:80 -b`),
        `-A -u ${VIP}:53 -s rr`, `-P -u ${VIP}:53 -z ${LAB.lip} -F lan0`, ...rs.map((r) => `-a -u ${VIP}:53 -r ${r.ip}:53 -b`),
      ].join('\n') + '\n',
    );
    await checkForwarding(d, { tcpPort: 8080, udpPort: 53, rsPort: 80, method: 'FullNat', flag: '-b' });

    // The real servers see the director's local address, never the client's.
    const ka = await d.keepAlive(8080);
    const victim = rs.find((r) => r.role === ka.first)!;
    const ss = await d.lab.sh(victim.role, 'ss -Htn state established');
    assert.match(ss, new RegExp(`${LAB.lip.replace(/\./g, '\\.')}:\\d+\\s*$`, 'm'), `peer is the LIP:\n${ss}`);
    assert.doesNotMatch(ss, new RegExp(LAB.client.replace(/\./g, '\\.')), 'the client address never reaches the real server');
    ka.child.kill('SIGKILL');

    const g = await d.admOk('-G');
    const lipRows = g.split('\n').filter((l) => l.includes(LAB.lip));
    assert.equal(lipRows.length, 2, g);
    const counters = JSON.parse(await d.admOk('--json', '-L', '-n')) as { services: unknown[] };
    assert.equal(counters.services.length, 2);
  });
});
