// tsvsd end to end, DR: real HTTP and UDP through the VIP to 3 real servers on the director's LAN.
import { test } from 'node:test';
import { canUseNetns } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP } from './director-harness.ts';
import { checkForwarding } from './director-checks.ts';

test('director DR: TCP and UDP, round robin, quiescing', { skip: !canUseNetns() && 'needs root', timeout: 180_000 }, async () => {
  await withDirectorLab('dr', async (d) => {
    const rs = d.lab.realServers;
    await d.restore(
      [`-A -t ${VIP}:80 -s rr`, ...rs.map((r) => `-a -t ${VIP}:80 -r ${r.ip} -g`), `-A -u ${VIP}:53 -s rr`, ...rs.map((r) => `-a -u ${VIP}:53 -r ${r.ip} -g`)].join('\n') + '\n',
    );
    await checkForwarding(d, { tcpPort: 80, udpPort: 53, rsPort: 80, method: 'Route' });
  });
});
