// Two tsvsd directors on one LAN, one VRRP instance: the master owns the VIP (ARP, HTTP via a DR real server), kill -9 → takeover within Master_Down_Interval + 1 s, preempt, nopreempt, priority 0 on SIGTERM.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, chmodSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns, waitFor } from '../../src/lab/netns.ts';
import { withVrrpLan, transitions } from './vrrp-lan.ts';

const skip = canUseNetns() ? false : 'needs root (network namespaces)';

test('vrrp e2e: tsvsd + tsvsd failover of the VIP', { skip, timeout: 120_000 }, async () => {
  await withVrrpLan('vrrp', ['ds1', 'ds2'], async (lan) => {
    const [mac1, mac2] = [await lan.mac('ds1'), await lan.mac('ds2')];
    const ds2 = await lan.tsvsd('ds2', '198.18.1.3', { priority: 100 });
    let ds1 = await lan.tsvsd('ds1', '198.18.1.2', { priority: 150 });
    // ds2 started first and may have become master; ds1 (higher priority, preempt) ends up master.
    await lan.waitState(ds1, 'MASTER', 10_000);
    await lan.waitState(ds2, 'BACKUP', 5000);
    assert.equal(await lan.vipMac(), mac1, 'the master answers ARP for the VIP');
    assert.equal(await lan.curl(), 'rs1', 'HTTP through the VIP reaches the real server');

    // kill -9: no priority 0, the backup waits Master_Down_Interval.
    const mdi = (await lan.state(ds2))!.masterDownIntervalMs;
    const killed = Date.now();
    ds1.child.kill('SIGKILL');
    await lan.waitState(ds2, 'MASTER', mdi + 3000);
    const takeover = Date.now() - killed;
    console.log(`# kill -9 of the master: backup MASTER after ${takeover} ms (Master_Down_Interval ${mdi} ms)`);
    assert.ok(takeover <= mdi + 1000, `takeover ${takeover} ms > Master_Down_Interval ${mdi} ms + 1 s`);
    assert.equal(await lan.vipMac(), mac2);
    assert.equal(await lan.curl(), 'rs1', 'the new master serves the VIP');
    assert.ok(transitions(ds2).some((t) => /^BACKUP->MASTER: master down timer expired \(no advert from 198\.18\.1\.2/.test(t)), transitions(ds2).join('\n'));

    // The old master comes back with a higher priority and preempts.
    ds1 = await lan.tsvsd('ds1', '198.18.1.2', { priority: 200 });
    const back = await lan.waitState(ds1, 'MASTER', 10_000);
    await lan.waitState(ds2, 'BACKUP', 3000);
    console.log(`# restarted master (priority 200, preempt) took the VIP back ${back} ms after its control socket answered`);
    assert.equal(await lan.vipMac(), mac1);
    assert.equal(await lan.curl(), 'rs1');

    // Clean stop: priority 0, the backup takes over after Skew_Time only.
    const stopped = Date.now();
    ds1.child.kill('SIGTERM');
    await lan.waitState(ds2, 'MASTER', 3000);
    const fast = Date.now() - stopped;
    console.log(`# SIGTERM of the master (priority 0 advert): backup MASTER after ${fast} ms`);
    assert.ok(fast < mdi - 1000, `takeover after a clean stop took ${fast} ms`);
    assert.ok((await lan.state(ds2))!.stats.priZeroReceived >= 1);

    // nopreempt: a higher priority that starts later stays BACKUP.
    ds1 = await lan.tsvsd('ds1', '198.18.1.2', { priority: 200, preempt: false });
    await lan.waitState(ds1, 'BACKUP', 5000);
    await new Promise((r) => setTimeout(r, mdi + 1500));
    assert.equal((await lan.state(ds1))!.state, 'BACKUP', 'nopreempt keeps the running master');
    assert.equal((await lan.state(ds2))!.state, 'MASTER');
    assert.equal(await lan.vipMac(), mac2);
    const s1 = (await lan.state(ds1))!;
    assert.equal(s1.master, '198.18.1.3');
    assert.equal(s1.stats.advertsBad, 0);
  });
});

test('vrrp e2e: a tracked virtual service losing its quorum puts the master in FAULT (notify_fault runs), the backup takes over', { skip, timeout: 90_000 }, async () => {
  await withVrrpLan('vrrpq', ['ds1', 'ds2'], async (lan) => {
    await lan.mgmt('ds1', '198.18.1.21');
    const notes = join(lan.dir, 'notify.log');
    const script = join(lan.dir, 'notify.sh');
    writeFileSync(script, `#!/bin/sh\necho "$*" >> ${notes}\n`);
    chmodSync(script, 0o755);
    const ds1 = await lan.tsvsd(
      'ds1',
      '198.18.1.2',
      { priority: 150, track_services: [{ service: 'tcp 198.18.1.100:80' }], notify: script, notify_fault: `${script} fault-script` },
      { check: true },
    );
    const ds2 = await lan.tsvsd('ds2', '198.18.1.3', { priority: 100 });
    await lan.waitState(ds1, 'MASTER', 10_000);
    await lan.waitState(ds2, 'BACKUP', 5000);
    const down = Date.now();
    await lan.realServer(false);
    await lan.waitState(ds1, 'FAULT', 5000);
    await lan.waitState(ds2, 'MASTER', 3000);
    console.log(`# the real server died: ds1 FAULT and ds2 MASTER ${Date.now() - down} ms later (health check every 0.3 s, priority 0 on FAULT)`);
    const s1 = (await lan.state(ds1))!;
    assert.deepEqual(s1.faults, ['service tcp 198.18.1.100:80 without quorum']);
    assert.ok(transitions(ds1).some((t) => /^MASTER->FAULT: service tcp 198\.18\.1\.100:80 without quorum/.test(t)), transitions(ds1).join('\n'));
    await waitFor('notify scripts', () => existsSync(notes) && /fault-script/.test(readFileSync(notes, 'utf8')) && /INSTANCE VI_1 FAULT 150/.test(readFileSync(notes, 'utf8')), 5000);
    // Quorum back: FAULT -> BACKUP, then ds1 (150, preempt) takes the VIP back.
    await lan.realServer(true);
    await lan.waitState(ds1, 'MASTER', 10_000);
    await lan.waitState(ds2, 'BACKUP', 3000);
    assert.equal(await lan.curl(), 'rs1');
    assert.match(readFileSync(notes, 'utf8'), /INSTANCE VI_1 MASTER 150/);
  });
});
