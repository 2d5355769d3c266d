// Health checks in the lab: a dead real server is taken out and comes back; reload; keepalived.conf.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, waitFor } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP, listedWeights, type DirectorLab } from './director-harness.ts';
import { realServerProgramArgs } from '../../src/lab/servers.ts';
import { bundledEntryCommand } from '../../src/lab/entry.ts';

const RIPS = ['198.18.2.11', '198.18.2.12', '198.18.2.13'];

const listed = (d: DirectorLab) => listedWeights(d, 80);

/** Kills rs's HTTP/UDP programs (the process the lab started for it). */
async function killPrograms(d: DirectorLab, role: string): Promise<void> {
  const proc = d.lab.state.procs.find((p) => p.role === role && p.what === 'programs');
  assert.ok(proc, `programs of ${role}`);
  await d.lab.sh(role, `kill ${proc.pid} 2>/dev/null; true`);
  d.lab.state.procs.splice(d.lab.state.procs.indexOf(proc), 1);
}

async function restartPrograms(d: DirectorLab, role: string): Promise<void> {
  const cmd = await bundledEntryCommand('rs-main', d.lab.state.dir);
  await d.lab.startProcess(role, 'programs2', [...cmd, ...realServerProgramArgs(role, 80, 53, true)], { ready: /^ready /m });
}

async function healthCycle(d: DirectorLab, interval: number, fall: number, rise: number): Promise<void> {
  await waitFor('all three real servers checked up', async () => Object.keys(await listed(d)).length === 3, 15_000, 200);
  const ok = await d.client('http', 80, 30);
  assert.equal(ok.failed, 0, ok.errors.join('; '));
  const t0 = Date.now();
  await killPrograms(d, 'rs2');
  await waitFor('rs2 taken out', async () => !('198.18.2.12' in (await listed(d))), (interval * fall + 5) * 1000, 200);
  const took = (Date.now() - t0) / 1000;
  assert.ok(took <= interval * fall + 3, `taken out in ${took.toFixed(1)} s (interval ${interval} × fall ${fall})`);
  const after = await d.client('http', 80, 20);
  assert.equal(after.failed, 0, `no request fails once rs2 is out: ${after.errors.join('; ')}`);
  assert.equal(after.byServer.rs2 ?? 0, 0);
  await restartPrograms(d, 'rs2');
  await waitFor('rs2 back after rise', async () => '198.18.2.12' in (await listed(d)), (interval * (rise + 2) + 5) * 1000, 200);
  const back = await d.client('http', 80, 30);
  assert.equal(back.failed, 0);
  assert.ok((back.byServer.rs2 ?? 0) > 0, 'rs2 serves again');
  const h = await d.admOk('--health');
  assert.match(h, /198\.18\.2\.12:80\s+up/);
}

test('health: YAML checks take a dead real server out within interval × fall and back after rise; reload applies the difference', { skip: !canUseNetns() && 'needs root', timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-health-'));
  const file = join(dir, 'tsvs.yaml');
  const yaml = (weights: number[], rips = RIPS) => `services:
  - protocol: tcp
    address: ${VIP}
    port: 80
    scheduler: rr
    realservers:
${rips.map((ip, i) => `      - { address: ${ip}, port: 80, method: nat, weight: ${weights[i]}, check: { type: http, path: /, status: [200], interval: 1, timeout: 1, fall: 2, rise: 2 } }`).join('\n')}
`;
  writeFileSync(file, yaml([1, 1, 1]));
  try {
    await withDirectorLab('nat', async (d) => {
      await healthCycle(d, 1, 2, 2);
      // Reload: rs1's weight changes, rs3 leaves; a keep-alive connection to the VIP survives it.
      const ka = await d.keepAlive(80);
      writeFileSync(file, yaml([5, 1], RIPS.slice(0, 2)));
      const r = await d.adm('--reload');
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /real servers \+0 -1 ~1/);
      const table = await listed(d);
      assert.deepEqual(table, { '198.18.2.11': 5, '198.18.2.12': 1 });
      if (ka.first !== 'rs3') {
        const again = await ka.second();
        assert.equal(again.server, ka.first, 'the established connection survived the reload');
        assert.equal(again.sameSocket, true);
      }
      // A bad file is refused whole: nothing changes.
      writeFileSync(file, 'services: [{ protocol: tcp, address: 198.18.1.100, port: 80, scheduler: nosuch }]\n');
      const bad = await d.adm('--reload');
      assert.notEqual(bad.code, 0);
      assert.match(bad.stderr, /nothing changed/);
      assert.deepEqual(await listed(d), { '198.18.2.11': 5, '198.18.2.12': 1 });
    }, 3, ['--config', file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('health: a keepalived.conf drives the same lab', { skip: !canUseNetns() && 'needs root', timeout: 240_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-kad-'));
  const file = join(dir, 'keepalived.conf');
  writeFileSync(
    file,
    `! the LVS part of a keepalived.conf
virtual_server ${VIP} 80 {
    delay_loop 1
    lb_algo rr
    lb_kind NAT
    protocol TCP
${RIPS.map(
  (ip) => `    real_server ${ip} 80 {
        weight 1
        HTTP_GET {
            url {
              path /
              status_code 200
            }
            connect_timeout 1
            retry 1
            delay_before_retry 1
        }
    }`,
).join('\n')}
}
`,
  );
  try {
    await withDirectorLab('nat', async (d) => {
      const out = await d.admOk('-L', '-n');
      assert.match(out, new RegExp(`TCP  ${VIP.replace(/\./g, '\\.')}:80 rr`));
      await healthCycle(d, 1, 2, 1);
    }, 3, ['--config', file]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
