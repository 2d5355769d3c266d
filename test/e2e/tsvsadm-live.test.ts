// tsvsadm against a live tsvsd: an ipvsadm script configures it, listings read back as ipvsadm prints
// them, save → clear → restore gives a byte-identical save, and refused commands change nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNetns } from '../../src/lab/netns.ts';
import { withDirectorLab } from './director-harness.ts';

test('tsvsadm live: script, listing, save/clear/restore, errors', { skip: !canUseNetns() && 'needs root', timeout: 120_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    await d.restore(
      [
        '-A -t 198.18.1.100:80 -s wrr -p 600 -M 255.255.255.0',
        '-a -t 198.18.1.100:80 -r 198.18.2.11:8080 -m -w 3 -x 100 -y 10',
        '-a -t 198.18.1.100:80 -r 198.18.2.12:8080 -m -w 1',
        '-A -u 198.18.1.100:53 -s sh -b sh-port',
        '-a -u 198.18.1.100:53 -r 198.18.2.13:53 -m',
        '-A -t 198.18.1.100:443',
        '-a -t 198.18.1.100:443 -r 198.18.2.13:443 -m -w 0',
      ].join('\n') + '\n',
    );
    const list = await d.admOk('-L', '-n');
    assert.equal(
      list,
      [
        'IP Virtual Server version 1.2.1 (size=4096)',
        'Prot LocalAddress:Port Scheduler Flags',
        '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn',
        'TCP  198.18.1.100:80 wrr persistent 600 mask 255.255.255.0',
        '  -> 198.18.2.11:8080             Masq    3      0          0         ',
        '  -> 198.18.2.12:8080             Masq    1      0          0         ',
        'TCP  198.18.1.100:443 wlc',
        '  -> 198.18.2.13:443              Masq    0      0          0         ',
        'UDP  198.18.1.100:53 sh (sh-port)',
        '  -> 198.18.2.13:53               Masq    1      0          0         ',
        '',
      ].join('\n'),
    );
    const thresholds = await d.admOk('-L', '-n', '--thresholds', '-t', '198.18.1.100:80');
    assert.match(thresholds, /  -> 198\.18\.2\.11:8080\s+100\s+10\s/);
    const save = await d.admOk('-S', '-n');
    assert.match(save, /^-A -t 198\.18\.1\.100:80 -s wrr -p 600 -M 255\.255\.255\.0$/m);
    assert.doesNotMatch(save, / -x | -y /, '-S does not save thresholds, as ipvsadm');
    await d.admOk('-C');
    assert.equal((await d.admOk('-L', '-n')).split('\n').length, 4, 'cleared');
    await d.restore(save);
    assert.equal(await d.admOk('-S', '-n'), save, 'save → clear → restore → identical save');

    const dup = await d.adm('-A', '-t', '198.18.1.100:80');
    assert.equal(dup.code, 255);
    assert.equal(dup.stderr, 'Service already exists\n');
    const nosvc = await d.adm('-D', '-t', '198.18.1.100:81');
    assert.equal(nosvc.code, 255);
    assert.equal(nosvc.stderr, 'No such service\n');
    const nodest = await d.adm('-d', '-t', '198.18.1.100:80', '-r', '198.18.2.99:8080');
    assert.equal(nodest.code, 255);
    assert.equal(nodest.stderr, 'No such destination\n');
    // A missing option argument is a popt error: ipvsadm exits 255 for those (usage errors are 2).
    const popt = await d.adm('-A', '-t', '198.18.1.100:80', '-s');
    assert.equal(popt.code, 255);
    const usage = await d.adm('-A', '-t', '198.18.1.100:80', '-r', '198.18.2.11');
    assert.equal(usage.code, 2);
    assert.match(usage.stderr, /^Illegal 'real-server' option with the 'add-service' command\n$/);
    const sched = await d.adm('-E', '-t', '198.18.1.100:80', '-s', 'nosuch');
    assert.equal(sched.stderr, 'Scheduler or persistence engine not found\n');
    assert.equal(await d.admOk('-S', '-n'), save, 'refused commands changed nothing');
  }, 1);
});
