#!/usr/bin/env node
// tsvsadm launcher: ipvsadm's syntax and output against tsvsd.
import { load } from './launch.mjs';

const mod = await load('cli/tsvsadm/main');
await mod.main();
