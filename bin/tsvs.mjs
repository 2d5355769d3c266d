#!/usr/bin/env node
// tsvs launcher: runs the compiled dist/ when it is at least as new as the sources, else the TypeScript sources through tsx.
import { readdirSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const compiled = new URL('dist/src/cli/tsvs.js', root);

/** True when dist/ holds a build newer than every source tsvs loads (loading tsx costs most of the start-up). */
function distIsFresh() {
  let built;
  try {
    built = statSync(compiled).mtimeMs;
  } catch {
    return false;
  }
  for (const dir of ['src/cli/', 'src/lab/', 'src/io/', 'src/lib/']) {
    for (const name of readdirSync(new URL(dir, root))) {
      if (name.endsWith('.ts') && statSync(new URL(dir + name, root)).mtimeMs > built) return false;
    }
  }
  return true;
}

let mod;
if (distIsFresh()) {
  mod = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import('../src/cli/tsvs.ts');
}
process.exitCode = await mod.main(process.argv.slice(2));
