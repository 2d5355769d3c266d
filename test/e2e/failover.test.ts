// The whole HA story in NAT, DR and TUN: two tsvsd on the service LAN, VRRP (a sync group with the DIP for NAT) and connection sync both ways; kill -9 of the master keeps long-lived connections intact; the old master preempts back.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { canUseNetns, waitFor, Netns } from '../../src/lab/netns.ts';
import { labUp, LAB, type LabMode } from '../../src/lab/topology.ts';
import { requestOnce } from '../../src/ctl/client.ts';
import { haPair, startHaDirector, haState, haConns, ECHO_PORT } from '../../src/lab/failover.ts';
import { ROOT } from './director-harness.ts';

const skip = canUseNetns() ? false : 'needs root (network namespaces)';
const VIP = LAB.vip;
const ECHO = ECHO_PORT;

async function scenario(mode: LabMode) {
  const lab = await labUp({ mode, servers: 2, name: `fo${mode}` });
  const n = Netns.create('fo');
  try {
    for (const rs of lab.realServers) {
      await lab.startProcess(rs.role, 'echo', [process.execPath, '--import', 'tsx', `${ROOT}test/e2e/failover-echo.ts`, String(ECHO)], { ready: /ready echo/ });
    }
    const [ds1, ds2] = await haPair(lab, n);
    const tsvsd1 = (priority: number, what: string) => startHaDirector(lab, n, ds1, priority, what, [ECHO]);
    let p1 = await tsvsd1(150, 'tsvsd1');
    await startHaDirector(lab, n, ds2, 100, 'tsvsd', [ECHO]);
    await waitFor('ds1 MASTER', async () => (await haState(ds1)) === 'MASTER', 10_000, 25);
    await waitFor('ds2 BACKUP', async () => (await haState(ds2)) === 'BACKUP', 5000, 25);

    const client = spawn('ip', ['netns', 'exec', lab.ns('client'), process.execPath, '--import', 'tsx', `${ROOT}test/e2e/failover-client.ts`, '--vip', VIP, '--port', String(ECHO), '--http', '80'], {
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    try {
      const lines = createInterface({ input: client.stdout! });
      const out: string[] = [];
      lines.on('line', (l) => out.push(l));
      const say = async (cmd: string, reply: RegExp) => {
        const from = out.length;
        client.stdin!.write(`${cmd}\n`);
        await waitFor(`client: ${cmd}`, () => out.slice(from).some((l) => reply.test(l)), 30_000);
        const bad = out.slice(from).find((l) => l.startsWith('failed'));
        if (bad) throw new Error(bad);
      };
      await say('open 3', /^(opened|failed)/);
      // The backup must know the long-lived connections before the master dies.
      await waitFor('3 conns synced to ds2', async () => (await haConns(ds2, ECHO)) >= 3, 10_000, 100);
      await new Promise((r) => setTimeout(r, 1000));

      const tKill = Date.now();
      process.kill(p1.pid, 'SIGKILL');
      await waitFor('ds2 MASTER', async () => (await haState(ds2)) === 'MASTER', 8000, 20);
      const tTake = Date.now();
      const mdi = (await requestOnce(ds2.socket, { op: 'vrrp' })).instances[0]!.masterDownIntervalMs;
      console.log(`# ${mode}: kill -9 of the master -> backup MASTER after ${tTake - tKill} ms (Master_Down_Interval ${mdi} ms)`);
      assert.ok(tTake - tKill <= mdi + 1000, `takeover after ${tTake - tKill} ms`);

      // New long-lived connections through the new master, then the old master comes back with a higher priority.
      await new Promise((r) => setTimeout(r, 2000));
      await say('open 2', /^(opened|failed)/);
      await waitFor('5 conns on ds2', async () => (await haConns(ds2, ECHO)) >= 5, 10_000, 100);
      p1 = await tsvsd1(200, 'tsvsd2');
      await waitFor('ds1 learns the conns from ds2', async () => (await haConns(ds1, ECHO)) >= 5, 15_000, 100);
      await waitFor('ds1 MASTER again', async () => (await haState(ds1)) === 'MASTER', 15_000, 20);
      const tBack = Date.now();
      await waitFor('ds2 BACKUP again', async () => (await haState(ds2)) === 'BACKUP', 5000, 20);
      console.log(`# ${mode}: the old master (priority 200, preempt) MASTER again ${tBack - tTake} ms after the takeover`);
      await new Promise((r) => setTimeout(r, 2000));

      const from = out.length;
      client.stdin!.write('finish\n');
      await waitFor('client results', () => out.slice(from).some((l) => l.startsWith('{')), 45_000);
      const res = JSON.parse(out.slice(from).find((l) => l.startsWith('{'))!) as {
        conns: Array<{ local: string; sent: number; received: number; sentHash: string; recvHash: string; error: string | null; closed: boolean }>;
        shorts: Array<{ t: number; ok: boolean }>;
      };
      assert.equal(res.conns.length, 5);
      const echoed = lab.realServers.flatMap((rs) =>
        readFileSync(join(lab.state.dir, `${rs.role}-echo.log`), 'utf8').split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as { bytes: number; hash?: string; error?: string }),
      );
      for (const c of res.conns) {
        assert.equal(c.error, null, `${c.local}: ${c.error}`);
        assert.ok(c.closed && c.sent > 0 && c.received === c.sent, `${c.local}: sent ${c.sent}, received ${c.received}`);
        assert.equal(c.recvHash, c.sentHash, `${c.local}: the bytes that came back differ`);
        assert.ok(echoed.some((e) => e.hash === c.sentHash && e.bytes === c.sent), `${c.local}: no real server received exactly these bytes`);
      }
      const failed = res.shorts.filter((s) => !s.ok);
      const inKill = (t: number) => t >= tKill - 1000 && t <= tTake + 1000;
      const inBack = (t: number) => t >= tBack - 1500 && t <= tBack + 1000;
      const outside = failed.filter((s) => !inKill(s.t) && !inBack(s.t));
      const sent = res.conns.reduce((a, c) => a + c.sent, 0);
      console.log(
        `# ${mode}: ${res.conns.length} long-lived connections intact (${(sent / 1e6).toFixed(1)} MB each way), ` +
          `short requests ${res.shorts.length - failed.length}/${res.shorts.length} ok; failed: ${failed.filter((f) => inKill(f.t)).length} around the kill -9 takeover, ` +
          `${failed.filter((f) => inBack(f.t)).length} around the preemption, ${outside.length} elsewhere`,
      );
      assert.deepEqual(outside.map((s) => new Date(s.t).toISOString()), [], 'short requests failed outside the takeover windows');
    } finally {
      if (client.exitCode === null) client.kill('SIGKILL');
    }
  } finally {
    await n.destroy();
    await lab.down();
  }
}

for (const mode of ['nat', 'dr', 'tun'] as const) {
  test(`failover e2e (${mode.toUpperCase()}): VRRP + sync both ways, kill -9 of the master, long-lived connections intact, preempt back`, { skip, timeout: 150_000 }, async () => {
    await scenario(mode);
  });
}
