#!/usr/bin/env node
// tsvs launcher: the lab, real-server set-up, trace and address commands.
import { load } from './launch.mjs';

const mod = await load('cli/tsvs');
process.exitCode = await mod.main(process.argv.slice(2));
