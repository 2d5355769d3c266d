#!/usr/bin/env node
// tsvsd launcher: runs the TypeScript sources through tsx (the data-plane worker gets the same loader).
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/cli/tsvsd.ts');
process.exit(await main(process.argv.slice(2)));
