// Run-time address changes: a VIP added through the control socket is announced and answers; removed, it is gone.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNetns, run, waitFor } from '../../src/lab/netns.ts';
import { withDirectorLab, ROOT } from './director-harness.ts';

test('address: tsvs address add announces a new VIP with gratuitous ARP; del removes it', { skip: !canUseNetns() && 'needs root', timeout: 120_000 }, async () => {
  await withDirectorLab('dr', async (d) => {
    // Let the router learn from unsolicited ARP, so the announcement shows in its neighbour table.
    await d.lab.sh('router', 'sysctl -qw net.ipv4.conf.lan0.arp_accept=1');
    const tsvs = (...a: string[]) => run(process.execPath, [`${ROOT}bin/tsvs.mjs`, ...a, '--socket', d.lab.director.socket], 30_000);
    const add = await tsvs('address', 'add', '198.18.1.101/32@lan0');
    assert.equal(add.code, 0, add.stderr);
    await waitFor('the router learns 198.18.1.101 from the gratuitous ARP', async () => /02:00:c6:12:01:02/.test(await d.lab.sh('router', 'ip neigh show 198.18.1.101')), 5000, 100);
    const list = await tsvs('address', 'list');
    assert.match(list.stdout, /^198\.18\.1\.101\/32@lan0$/m);
    const ping = await d.lab.exec('client', ['ping', '-c', '1', '-W', '2', '198.18.1.101']);
    assert.equal(ping.code, 0, 'the new address answers ICMP echo');
    const dup = await tsvs('address', 'add', '198.18.1.101/32@lan0');
    assert.notEqual(dup.code, 0, 'adding it twice is refused');
    assert.equal((await tsvs('address', 'del', '198.18.1.101/32@lan0')).code, 0);
    await d.lab.sh('router', 'ip neigh flush dev lan0');
    const gone = await d.lab.exec('client', ['ping', '-c', '1', '-W', '1', '198.18.1.101']);
    assert.notEqual(gone.code, 0, 'the removed address no longer answers');
  }, 1);
});
