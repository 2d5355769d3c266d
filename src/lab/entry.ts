// How the lab starts its own programs (real-server programs, the TUN decapsulator) as processes.
// Kept apart from servers.ts: rs-main's bundle must not pull in modules that locate files of the package.
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { moduleCommand } from '../root.ts';

/**
 * The command line that runs a TypeScript entry of src/lab/ as its own process: through tsx from the
 * sources, or plain node when running from the compiled dist/ tree.
 */
export function labEntryCommand(entry: string): string[] {
  return moduleCommand(import.meta.url, `./${entry}`);
}

/**
 * Like `labEntryCommand`, but first bundles the entry into one plain-JS file `outDir/outName` with the
 * esbuild that tsx brings along: a lab starts one program per real server, and loading tsx in each costs
 * about half a second of CPU. Only for entries whose modules do not locate files from `import.meta.url`
 * (the bundle lives elsewhere). Falls back to `labEntryCommand` when esbuild cannot be loaded.
 */
export async function bundledEntryCommand(entry: string, outDir: string, outName = `${entry}.mjs`): Promise<string[]> {
  const here = fileURLToPath(new URL('.', import.meta.url));
  const ts = `${here}${entry}.ts`;
  if (!existsSync(ts)) return labEntryCommand(entry);
  const outfile = join(outDir, outName);
  let esbuild: { build(o: Record<string, unknown>): Promise<unknown> };
  try {
    const req = createRequire(createRequire(import.meta.url).resolve('tsx'));
    esbuild = (await import(pathToFileURL(req.resolve('esbuild')).href)) as typeof esbuild;
  } catch {
    return labEntryCommand(entry);
  }
  await esbuild.build({
    entryPoints: [ts],
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    outfile,
    logLevel: 'silent',
  });
  return [process.execPath, outfile];
}
