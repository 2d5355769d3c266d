// Where tsvs's files are, whether it runs from the TypeScript sources (through tsx) or from the compiled
// dist/ tree that `npm install` builds for fast command start-up. Code that locates a file of the package,
// starts one of its modules as a process or a worker thread, goes through here: `new URL('../..',
// import.meta.url)` means the repository in src/ but dist/ once built.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, type WorkerOptions } from 'node:worker_threads';

function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir.endsWith('/') ? dir : `${dir}/`;
    const up = dirname(dir);
    if (up === dir) throw new Error(`tsvs: no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = up;
  }
}

/** The package's root directory (holds package.json, bin/, native/, src/), with a trailing slash. */
export const ROOT = findRoot();

/** True when this code runs from the .ts sources (under tsx), false from dist/. */
export const FROM_SOURCES = import.meta.url.endsWith('.ts');

/**
 * The file of module `rel` (a path without extension, relative to the module at `base`, an
 * import.meta.url) in the same tree as `base`: `.ts` in the sources, `.js` in dist/.
 */
export function moduleFile(base: string, rel: string): string {
  return fileURLToPath(new URL(`${rel}${base.endsWith('.ts') ? '.ts' : '.js'}`, base));
}

function tsxUrl(): string {
  return pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
}

/** The command line that runs the module `rel` (see moduleFile) as its own node process. */
export function moduleCommand(base: string, rel: string): string[] {
  const file = moduleFile(base, rel);
  return file.endsWith('.ts') ? [process.execPath, '--import', tsxUrl(), file] : [process.execPath, file];
}

/**
 * A worker thread running the module `rel` (see moduleFile). From the sources the worker first registers
 * the tsx loader (Node 20 does not carry --import hooks into workers reliably).
 */
export function moduleWorker(base: string, rel: string, options: WorkerOptions): Worker {
  const file = moduleFile(base, rel);
  if (!file.endsWith('.ts')) return new Worker(file, options);
  const api = import.meta.resolve('tsx/esm/api');
  const boot = `import(${JSON.stringify(api)}).then((m) => m.register()).then(() => import(${JSON.stringify(pathToFileURL(file).href)}))`;
  return new Worker(boot, { ...options, eval: true });
}
