// tsvsd end to end, NAT: real HTTP and UDP through the VIP to 3 real servers, exact rr shares, quiesce.
import { test } from 'node:test';
import { canUseNetns } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP } from './director-harness.ts';
import assert from 'node:assert/strict';
import { checkForwarding, tcpCsumErrors } from './director-checks.ts';

test('director NAT: TCP (port mapped 8080→80) and UDP, round robin, quiescing', { skip: !canUseNetns() && 'needs root', timeout: 180_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    const rs = d.lab.realServers;
    await d.restore(
      [`-A -t ${VIP}:8080 -s rr`, ...rs.map((r) => `-a -t ${VIP}:8080 -r ${r.ip}:80 -m`), `-A -u ${VIP}:53 -s rr`, ...rs.map((r) => `-a -u ${VIP}:53 -r ${r.ip}:53 -m`)].join('\n') + '\n',
    );
    await checkForwarding(d, { tcpPort: 8080, udpPort: 53, rsPort: 80, method: 'Masq' });
  });
});

test('director NAT with checksum completion forced on its egress: the partial-checksum rule holds', { skip: !canUseNetns() && 'needs root', timeout: 180_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    // With tx checksumming off on the director's own veths, the kernel finishes every partial checksum
    // tsvsd sends in software, and the receivers verify it: a wrong seed shows up as TcpInCsumErrors.
    await d.lab.sh('director', 'ethtool -K lan0 tx off >/dev/null && ethtool -K nat0 tx off >/dev/null');
    const rs = d.lab.realServers;
    await d.restore([`-A -t ${VIP}:8080 -s rr`, ...rs.map((r) => `-a -t ${VIP}:8080 -r ${r.ip}:80 -m`)].join('\n') + '\n');
    const before = await tcpCsumErrors(d);
    const x = await d.client('xfer', 8080, 8 << 20);
    assert.equal(x.failed, 0, x.errors.join('; '));
    const h = await d.client('http', 8080, 30);
    assert.equal(h.failed, 0, h.errors.join('; '));
    assert.deepEqual(await tcpCsumErrors(d), before, 'TcpInCsumErrors unchanged at the client and the real servers');
  });
});
