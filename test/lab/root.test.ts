// Locating the package and its modules from the sources and from the compiled dist/ tree.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { ROOT, FROM_SOURCES, moduleFile, moduleCommand } from '../../src/root.ts';

test('ROOT is the package root from the sources; module files keep the tree of their caller', () => {
  assert.equal(JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')).name, 'tsvs');
  assert.ok(ROOT.endsWith('/'));
  assert.equal(FROM_SOURCES, true);
  assert.equal(moduleFile(`file://${ROOT}src/cli/tsvsd.ts`, '../dp/worker'), `${ROOT}src/dp/worker.ts`);
  assert.equal(moduleFile(`file://${ROOT}dist/src/cli/tsvsd.js`, '../dp/worker'), `${ROOT}dist/src/dp/worker.js`);
  const cmd = moduleCommand(`file://${ROOT}src/lab/servers.ts`, './decap-main');
  assert.deepEqual([cmd[0], cmd[1], cmd[3]], [process.execPath, '--import', `${ROOT}src/lab/decap-main.ts`]);
  assert.deepEqual(moduleCommand(`file://${ROOT}dist/src/lab/servers.js`, './decap-main'), [process.execPath, `${ROOT}dist/src/lab/decap-main.js`]);
});

const built = existsSync(`${ROOT}dist/src/root.js`);
test('from dist/, ROOT is still the package root and the entries that get spawned exist', { skip: !built && 'dist/ not built (npm run build)' }, () => {
  const probe = `import('${ROOT}dist/src/root.js').then((m) => console.log(JSON.stringify({ root: m.ROOT, src: m.FROM_SOURCES,
    cmds: ['./decap-main', '../health/probe-main', '../dp/worker', './client'].map((r) => m.moduleFile('file://${ROOT}dist/src/lab/x.js', r)) })))`;
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', probe], { encoding: 'utf8', timeout: 20_000 });
  assert.equal(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { root: string; src: boolean; cmds: string[] };
  assert.equal(out.root, ROOT);
  assert.equal(out.src, false);
  for (const f of out.cmds) assert.ok(existsSync(f), `${f} missing from dist/`);
});
