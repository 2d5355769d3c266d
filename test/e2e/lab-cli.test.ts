// `tsvs lab up/exec/status/down` as a user runs them: a persistent lab with tsvsd, traffic, nothing left after down.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, run } from '../../src/lab/netns.ts';
import { ROOT } from './director-harness.ts';

test('tsvs lab: up starts tsvsd with the services, exec reaches the VIP, down removes everything', { skip: !canUseNetns() && 'needs root', timeout: 180_000 }, async () => {
  const stateDir = mkdtempSync(join(tmpdir(), 'tsvs-labcli-'));
  const name = `c${process.pid % 100000}`;
  const tsvs = (...a: string[]) => run(process.execPath, [`${ROOT}bin/tsvs.mjs`, ...a], 120_000);
  try {
    const up = await tsvs('lab', 'up', '--mode', 'dr', '--servers', '2', '--name', name, '--state-dir', stateDir);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stdout, /tsvsd is running/);
    const got = new Set<string>();
    for (let i = 0; i < 4; i++) {
      const r = await tsvs('lab', 'exec', '--name', name, '--state-dir', stateDir, 'client', '--', 'curl', '-s', '-m', '3', 'http://198.18.1.100/');
      assert.equal(r.code, 0, r.stderr);
      got.add(r.stdout.trim());
    }
    assert.deepEqual([...got].sort(), ['rs1', 'rs2'], 'round robin over both real servers');
    const status = await tsvs('lab', 'status', '--name', name, '--state-dir', stateDir);
    assert.equal(status.code, 0, status.stderr);
    assert.match(status.stdout, new RegExp(name));
  } finally {
    const down = await tsvs('lab', 'down', '--name', name, '--state-dir', stateDir);
    assert.equal(down.code, 0, down.stderr);
    const again = await tsvs('lab', 'down', '--name', name, '--state-dir', stateDir);
    assert.equal(again.code, 0, 'down is idempotent');
    const ns = (await run('ip', ['netns', 'list'])).stdout;
    assert.ok(!ns.includes(`tsvs-lab-${name}-`), `namespaces left: ${ns}`);
    assert.ok(!existsSync(join(stateDir, `lab-${name}.json`)));
    rmSync(stateDir, { recursive: true, force: true });
  }
});
