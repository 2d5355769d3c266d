#!/usr/bin/env node
// tsvsadm launcher: runs the compiled dist/ when it is at least as new as the sources, else the TypeScript sources through tsx.
import { readdirSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);
const compiled = new URL('dist/src/cli/tsvsadm/main.js', root);

/** True when dist/ holds a build newer than every source tsvsadm loads (loading tsx costs most of the start-up). */
function distIsFresh() {
  let built;
  try {
    built = statSync(compiled).mtimeMs;
  } catch {
    return false;
  }
  const newer = (dir) => {
    for (const e of readdirSync(new URL(dir, root), { withFileTypes: true })) {
      if (e.isDirectory()) {
        if (newer(`${dir}${e.name}/`)) return true;
      } else if (e.name.endsWith('.ts') && statSync(new URL(dir + e.name, root)).mtimeMs > built) return true;
    }
    return false;
  };
  return !newer('src/');
}

let mod;
if (distIsFresh()) {
  mod = await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  mod = await import('../src/cli/tsvsadm/main.ts');
}
await mod.main();
