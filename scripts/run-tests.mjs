#!/usr/bin/env node
// Collects the test files (Node 20's runner does not expand globs) and runs them in one node:test run.
import { readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const args = process.argv.slice(2);
const onlyUnit = args.includes('--unit');
const onlyE2e = args.includes('--e2e');
const filters = args.filter((a) => !a.startsWith('--'));

function walk(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (name.endsWith('.test.ts')) out.push(p);
  }
  return out;
}

let files = walk(join(root, 'test')).map((f) => relative(root, f)).sort();
if (onlyUnit) files = files.filter((f) => !f.startsWith('test/e2e/'));
if (onlyE2e) files = files.filter((f) => f.startsWith('test/e2e/'));
if (filters.length) files = files.filter((f) => filters.some((s) => f.includes(s)));
// Unit files first; e2e files build namespaces and run one at a time so their traffic figures are not skewed.
files.sort((a, b) => Number(a.startsWith('test/e2e/')) - Number(b.startsWith('test/e2e/')) || a.localeCompare(b));
if (files.length === 0) {
  console.error('no test files matched');
  process.exit(1);
}
const r = spawnSync(process.execPath, ['--import', 'tsx', '--test', '--test-concurrency=1', ...files], {
  cwd: root,
  stdio: 'inherit',
});
process.exit(r.status ?? 1);
