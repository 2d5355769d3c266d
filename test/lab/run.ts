// Command lines the lab e2e tests run inside namespaces: the probe helper and the tsvs CLI, through tsx.
import { createRequire } from 'node:module';
import { fileURLToPath, pathToFileURL } from 'node:url';

const tsx = pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href;
const root = fileURLToPath(new URL('../..', import.meta.url));

/** `probe ARGS` (test/lab/probe.ts). */
export function probe(...args: string[]): string[] {
  return [process.execPath, '--import', tsx, `${root}test/lab/probe.ts`, ...args];
}

/** `tsvs ARGS` through bin/tsvs.mjs, as a user runs it. */
export function tsvs(...args: string[]): string[] {
  return [process.execPath, `${root}bin/tsvs.mjs`, ...args];
}
