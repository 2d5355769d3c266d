// Shared by the command launchers: run the compiled dist/ when it is newer than every source, else the
// TypeScript sources through tsx (loading tsx costs most of a command's start-up).
import { readdirSync, statSync } from 'node:fs';

const root = new URL('../', import.meta.url);

function newerSource(dir, built) {
  for (const e of readdirSync(new URL(dir, root), { withFileTypes: true })) {
    if (e.isDirectory()) {
      if (newerSource(`${dir}${e.name}/`, built)) return true;
    } else if (e.name.endsWith('.ts') && statSync(new URL(dir + e.name, root)).mtimeMs > built) return true;
  }
  return false;
}

/** Imports `src/<entry>.ts` (or its build in dist/) and returns the module. */
export async function load(entry) {
  const compiled = new URL(`dist/src/${entry}.js`, root);
  let built = -1;
  try {
    built = statSync(compiled).mtimeMs;
  } catch {
    // no build
  }
  if (built >= 0 && !newerSource('src/', built)) return import(compiled.href);
  const { register } = await import('tsx/esm/api');
  register();
  return import(new URL(`src/${entry}.ts`, root).href);
}
