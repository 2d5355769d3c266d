// `tsvs realserver setup|check|teardown` per mode in a lab real server, and the DR ARP problem made visible.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, run } from '../../src/lab/netns.ts';
import { labUp, LAB, type Lab, type LabMode } from '../../src/lab/topology.ts';
import { realServerCheck, realServerSetup, realServerTeardown, type RealServerOptions } from '../../src/lab/realserver.ts';
import { tsvs } from '../lab/run.ts';

const skip = !canUseNetns() && 'needs root';

async function withBareLab(mode: LabMode, fn: (lab: Lab, stateDir: string) => Promise<void>): Promise<void> {
  // A lab whose real server is left as a fresh host would be: no realserver setup, no programs.
  const lab = await labUp({ mode, servers: 1, name: 'rschk', programs: false, realServerSetup: false });
  const stateDir = mkdtempSync(join(tmpdir(), `tsvs-${process.pid}-rs-`));
  try {
    await fn(lab, stateDir);
  } finally {
    await lab.down();
    rmSync(stateDir, { recursive: true, force: true });
  }
}

const sysctl = async (lab: Lab, key: string) => (await lab.sh('rs1', `cat /proc/sys/net/ipv4/${key}`)).trim();

for (const mode of ['nat', 'dr', 'tun'] as const) {
  test(`realserver ${mode}: check fails before setup, passes after (exit 0), teardown undoes setup`, { skip }, async () => {
    await withBareLab(mode, async (lab, stateDir) => {
      const opts: RealServerOptions = { mode, vip: LAB.vip, dip: mode === 'nat' ? LAB.dip : undefined, stateDir };
      const host = lab.host('rs1');
      const cli = (cmd: string) =>
        lab.exec('rs1', tsvs('realserver', cmd, '--mode', mode, '--vip', LAB.vip, ...(opts.dip ? ['--dip', opts.dip] : []), '--state-dir', stateDir), 30_000);

      const before = await cli('check');
      assert.equal(before.code, 1, before.stdout + before.stderr);
      assert.match(before.stdout, /^FAIL /m);
      assert.match(before.stdout, /^ {6}fix: /m);

      const setup = await cli('setup');
      assert.equal(setup.code, 0, setup.stderr);
      const after = await cli('check');
      assert.equal(after.code, 0, after.stdout + after.stderr);
      assert.doesNotMatch(after.stdout, /FAIL/);
      assert.match(after.stdout, /^PASS /m);

      if (mode === 'dr') {
        assert.match(await lab.sh('rs1', 'ip -o -4 addr show dev lo'), /198\.18\.1\.100\/32/);
        assert.equal(await sysctl(lab, 'conf/eth0/arp_ignore'), '1');
        assert.equal(await sysctl(lab, 'conf/all/arp_announce'), '2');
      }
      if (mode === 'nat') assert.match(await lab.sh('rs1', 'ip -4 route show default'), /via 198\.18\.2\.1/);
      let pidFile = '';
      if (mode === 'tun') {
        assert.match(await lab.sh('rs1', 'ip -o -4 addr show'), /tsvsipip0\s+inet 198\.18\.1\.100\/32/);
        assert.equal(await sysctl(lab, 'conf/all/rp_filter'), '0');
        pidFile = (await run('sh', ['-c', `ls ${stateDir}/ipip-decap-*.pid`])).stdout.trim();
        assert.ok(existsSync(pidFile), 'the decapsulator writes its PID file');
      }

      const down = await cli('teardown');
      assert.equal(down.code, 0, down.stderr);
      assert.doesNotMatch(await lab.sh('rs1', 'ip -o -4 addr show'), /198\.18\.1\.100/);
      if (mode !== 'nat') {
        assert.equal(await sysctl(lab, 'conf/all/arp_ignore'), '0');
        assert.equal(await sysctl(lab, 'conf/eth0/arp_announce'), '0');
      }
      if (mode === 'nat') assert.equal((await lab.sh('rs1', 'ip -4 route show default')).trim(), '');
      if (mode === 'tun') {
        assert.ok(!existsSync(pidFile), 'teardown removes the PID file');
        assert.doesNotMatch(await lab.sh('rs1', 'ip -o link show'), /tsvsipip0/);
        assert.equal((await lab.sh('rs1', 'grep -ci ":0004 " /proc/net/raw || true')).trim(), '0', 'no IPIP raw socket left');
      }
      const again = await realServerCheck(host, opts);
      assert.ok(again.some((r) => !r.ok), 'after teardown check fails again');
    });
  });
}

const hasArping = (await run('sh', ['-c', 'command -v arping'])).code === 0;

test('realserver dr: arp_ignore left at 0 fails the check, and the real server answers ARP for the VIP', { skip: skip || (!hasArping && 'needs arping (apt-get install iputils-arping)') }, async () => {
  await withBareLab('dr', async (lab, stateDir) => {
    const opts: RealServerOptions = { mode: 'dr', vip: LAB.vip, stateDir };
    const host = lab.host('rs1');
    await realServerSetup(host, opts);
    const rsMac = lab.realServers[0]!.mac.toUpperCase();
    const arping = () => lab.exec('router', ['arping', '-c', '2', '-w', '3', '-I', 'lan0', LAB.vip], 10_000);

    // Set up properly, nobody on the LAN answers ARP for the VIP (no director running here).
    const quiet = await arping();
    assert.notEqual(quiet.code, 0, quiet.stdout);
    assert.doesNotMatch(quiet.stdout, new RegExp(rsMac));

    // The classic mistake: arp_ignore back at 0.
    await lab.sh('rs1', 'sysctl -qw net.ipv4.conf.all.arp_ignore=0 net.ipv4.conf.eth0.arp_ignore=0');
    const res = await realServerCheck(host, opts);
    const bad = res.filter((r) => !r.ok);
    assert.deepEqual(bad.map((r) => r.what), ['arp_ignore on eth0']);
    assert.match(bad[0]!.fix!, /arp_ignore=1/);
    const loud = await arping();
    assert.equal(loud.code, 0, loud.stdout + loud.stderr);
    assert.match(loud.stdout, new RegExp(`reply from ${LAB.vip.replace(/\./g, '\\.')} \\[${rsMac}\\]`, 'i'));

    await realServerTeardown(host, opts);
  });
});
