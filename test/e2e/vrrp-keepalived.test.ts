// Interoperation with Debian's keepalived (VRRP only, in its own namespace): tsvsd and keepalived in one instance take over from each other, VRRP v2 and v3, preempt and nopreempt.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { canUseNetns, waitFor } from '../../src/lab/netns.ts';
import { namespacePids } from '../../src/lab/topology.ts';
import { withVrrpLan, VIP, RS, type VrrpLan, type Tsvsd } from './vrrp-lan.ts';

const KEEPALIVED = '/usr/sbin/keepalived';
const skip = !canUseNetns() ? 'needs root (network namespaces)' : !existsSync(KEEPALIVED) ? 'keepalived is not installed (apt-get install keepalived, or scripts/ensure-tools.sh)' : false;
const KA_ADDR = '198.18.1.4';
const TS_ADDR = '198.18.1.2';

interface Ka {
  child: ChildProcess;
  log: string[];
}

/** One keepalived.conf for both daemons: the instance (v2 with PASS), and for tsvsd the LVS part too. */
function kaConf(o: { version: 2 | 3; advert: number; priority: number; preempt: boolean }, lvs: boolean): string {
  return `global_defs {
  router_id ${lvs ? 'tsvsd' : 'ka'}
  vrrp_version ${o.version}
}
vrrp_instance VI_1 {
  state BACKUP
  interface lan0
  virtual_router_id 51
  priority ${o.priority}
  advert_int ${o.advert}
  ${o.preempt ? '' : 'nopreempt'}
  ${o.version === 2 ? 'authentication {\n    auth_type PASS\n    auth_pass s3cret\n  }' : ''}
  virtual_ipaddress {
    ${VIP}/32
  }
}
${lvs ? `virtual_server ${VIP} 80 {\n  lb_algo rr\n  lb_kind DR\n  protocol TCP\n  real_server ${RS} 80 {\n  }\n}\n` : ''}`;
}

async function startKeepalived(lan: VrrpLan, o: { version: 2 | 3; advert: number; priority: number; preempt: boolean }, run: number): Promise<Ka> {
  const conf = join(lan.dir, `keepalived-${run}.conf`);
  writeFileSync(conf, kaConf(o, false));
  const pid = (n: string) => join(lan.dir, `ka-${run}-${n}.pid`);
  const child = lan.n.spawn('ka', [KEEPALIVED, '-n', '-l', '-D', '-G', '-P', '-f', conf, '-p', pid('main'), '-r', pid('vrrp'), '-c', pid('chk')]);
  const ka: Ka = { child, log: [] };
  child.stdout!.on('data', (b: Buffer) => ka.log.push(...b.toString().split('\n')));
  child.stderr!.on('data', (b: Buffer) => ka.log.push(...b.toString().split('\n')));
  await waitFor('keepalived in BACKUP', () => ka.log.some((l) => /Entering BACKUP STATE/.test(l)), 10_000);
  return ka;
}

/** keepalived's machine dies: its link goes down (nothing more leaves it), then every process in its namespace is killed. */
async function crashKeepalived(lan: VrrpLan): Promise<void> {
  await lan.n.ip('ka', 'link', 'set', 'lan0', 'down');
  for (const p of await namespacePids(lan.n.ns('ka'))) {
    try {
      process.kill(p, 'SIGKILL');
    } catch {
      /* gone */
    }
  }
  await waitFor('keepalived gone', async () => (await namespacePids(lan.n.ns('ka'))).length === 0, 5000);
  // The "rebooted" machine: link up, no VIP left behind.
  await lan.n.sh('ka', `ip addr del ${VIP}/32 dev lan0 2>/dev/null; ip link set lan0 up`);
}

async function kaHasVip(lan: VrrpLan): Promise<boolean> {
  return (await lan.n.ip('ka', '-4', 'addr', 'show', 'dev', 'lan0')).includes(`${VIP}/32`);
}

async function scenario(version: 2 | 3, advert: number, nopreemptSide: 'tsvsd' | 'keepalived') {
  await withVrrpLan(`ka${version}`, ['ts', 'ka'], async (lan) => {
    await lan.n.ip('ka', 'addr', 'add', `${KA_ADDR}/24`, 'dev', 'lan0');
    const [tsMac, kaMac] = [await lan.mac('ts'), await lan.mac('ka')];
    // tsvsd reads the same keepalived.conf as keepalived (its LVS part too); v2 with PASS authentication.
    const startTs = (priority: number, preempt = true): Promise<Tsvsd> => lan.tsvsdKeepalived('ts', TS_ADDR, kaConf({ version, advert, priority, preempt }, true));
    let run = 0;
    let ka = await startKeepalived(lan, { version, advert, priority: 100, preempt: true }, ++run);
    let ts = await startTs(150);
    // 1. tsvsd (150) over keepalived (100).
    await lan.waitState(ts, 'MASTER', 10_000);
    await waitFor('keepalived BACKUP without the VIP', async () => !(await kaHasVip(lan)), 5000);
    assert.equal(await lan.vipMac(), tsMac);
    assert.equal(await lan.curl(), 'rs1');
    let s = (await lan.state(ts))!;
    assert.equal(s.stats.advertsBad, 0, `tsvsd refused keepalived's adverts: ${JSON.stringify(s.bad)}`);

    // 2. kill -9 tsvsd: keepalived takes over within its Master_Down_Interval + 1 s.
    const kaMdi = 3 * advert * 1000 + (version === 2 ? (156 * 1000) / 256 : (156 * advert * 1000) / 256);
    let t0 = Date.now();
    ts.child.kill('SIGKILL');
    await waitFor('keepalived MASTER', () => kaHasVip(lan), kaMdi + 3000, 20);
    let took = Date.now() - t0;
    console.log(`# v${version}: kill -9 tsvsd -> keepalived MASTER after ${took} ms (its Master_Down_Interval ${Math.round(kaMdi)} ms)`);
    assert.ok(took <= kaMdi + 1000, `${took} ms`);
    assert.equal(await lan.vipMac(), kaMac);

    if (nopreemptSide === 'tsvsd') {
      // 3. tsvsd back with a higher priority but nopreempt: keepalived stays master.
      ts = await startTs(150, false);
      await lan.waitState(ts, 'BACKUP', 5000);
      await new Promise((r) => setTimeout(r, kaMdi + 1500));
      s = (await lan.state(ts))!;
      assert.equal(s.state, 'BACKUP', 'nopreempt tsvsd stays BACKUP');
      assert.equal(s.master, KA_ADDR);
      assert.ok(await kaHasVip(lan));
      ts.child.kill('SIGTERM');
      await new Promise((r) => ts.child.once('exit', r));
    }
    // 4. tsvsd back with preempt: it takes the VIP from keepalived.
    ts = await startTs(150);
    await lan.waitState(ts, 'MASTER', 10_000);
    await waitFor('keepalived releases the VIP', async () => !(await kaHasVip(lan)), 5000);
    assert.equal(await lan.vipMac(), tsMac);
    assert.ok(ka.log.some((l) => /Entering BACKUP STATE/.test(l)));

    if (nopreemptSide === 'keepalived') {
      // 5a. keepalived with a higher priority but nopreempt stays BACKUP.
      ka.child.kill('SIGTERM');
      await new Promise((r) => ka.child.once('exit', r));
      ka = await startKeepalived(lan, { version, advert, priority: 200, preempt: false }, ++run);
      await new Promise((r) => setTimeout(r, kaMdi + 1500));
      assert.ok(!(await kaHasVip(lan)), 'nopreempt keepalived stays BACKUP');
      assert.equal((await lan.state(ts))!.state, 'MASTER');
    }
    // 5. keepalived with a higher priority (preempt) takes the VIP from tsvsd.
    ka.child.kill('SIGTERM');
    await new Promise((r) => ka.child.once('exit', r));
    ka = await startKeepalived(lan, { version, advert, priority: 200, preempt: true }, ++run);
    await waitFor('keepalived preempts', () => kaHasVip(lan), 10_000, 20);
    await lan.waitState(ts, 'BACKUP', 3000);
    assert.equal((await lan.state(ts))!.master, KA_ADDR);
    assert.equal(await lan.vipMac(), kaMac);

    // 6. keepalived's machine dies: tsvsd takes over within its Master_Down_Interval + 1 s.
    const tsMdi = (await lan.state(ts))!.masterDownIntervalMs;
    t0 = Date.now();
    await crashKeepalived(lan);
    await lan.waitState(ts, 'MASTER', tsMdi + 3000);
    took = Date.now() - t0;
    console.log(`# v${version}: keepalived's machine dies -> tsvsd MASTER after ${took} ms (its Master_Down_Interval ${tsMdi} ms)`);
    assert.ok(took <= tsMdi + 1000, `${took} ms`);
    assert.equal(await lan.vipMac(), tsMac);
    assert.equal(await lan.curl(), 'rs1');
    s = (await lan.state(ts))!;
    assert.equal(s.stats.advertsBad, 0, JSON.stringify(s.bad));
    assert.ok(s.stats.advertsReceived > 0);
  });
}

test('vrrp e2e: tsvsd and keepalived, VRRP v2 (advert_int 1, auth PASS), nopreempt on tsvsd', { skip, timeout: 120_000 }, async () => {
  await scenario(2, 1, 'tsvsd');
});

test('vrrp e2e: tsvsd and keepalived, VRRP v3 (advert_int 0.5), nopreempt on keepalived', { skip, timeout: 120_000 }, async () => {
  await scenario(3, 0.5, 'keepalived');
});
