// tsvsd end to end, NAT: real HTTP and UDP through the VIP to 3 real servers, exact rr shares, quiesce.
import { test } from 'node:test';
import { canUseNetns } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP } from './director-harness.ts';
import { checkForwarding } from './director-checks.ts';

test('director NAT: TCP (port mapped 8080→80) and UDP, round robin, quiescing', { skip: !canUseNetns() && 'needs root', timeout: 180_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    const rs = d.lab.realServers;
    await d.restore(
      [`-A -t ${VIP}:8080 -s rr`, ...rs.map((r) => `-a -t ${VIP}:8080 -r ${r.ip}:80 -m`), `-A -u ${VIP}:53 -s rr`, ...rs.map((r) => `-a -u ${VIP}:53 -r ${r.ip}:53 -m`)].join('\n') + '\n',
    );
    await checkForwarding(d, { tcpPort: 8080, udpPort: 53, rsPort: 80, method: 'Masq' });
  });
});
