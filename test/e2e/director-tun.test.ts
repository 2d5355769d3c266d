// tsvsd end to end, TUN: real HTTP and UDP through the VIP to 3 remote real servers over IPIP.
import { test } from 'node:test';
import { canUseNetns } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP } from './director-harness.ts';
import { checkForwarding } from './director-checks.ts';

test('director TUN: TCP and UDP, round robin, quiescing', { skip: !canUseNetns() && 'needs root', timeout: 180_000 }, async () => {
  await withDirectorLab('tun', async (d) => {
    const rs = d.lab.realServers;
    await d.restore(
      [`-A -t ${VIP}:80 -s rr`, ...rs.map((r) => `-a -t ${VIP}:80 -r ${r.ip} -i`), `-A -u ${VIP}:53 -s rr`, ...rs.map((r) => `-a -u ${VIP}:53 -r ${r.ip} -i`)].join('\n') + '\n',
    );
    await checkForwarding(d, { tcpPort: 80, udpPort: 53, rsPort: 80, method: 'Tunnel' });
  });
});
