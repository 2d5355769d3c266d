#!/usr/bin/env node
// tsvsd launcher: the director (its data-plane worker runs from the same tree, dist/ or the sources).
import { load } from './launch.mjs';

const { main } = await load('cli/tsvsd');
process.exit(await main(process.argv.slice(2)));
