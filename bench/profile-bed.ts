// Profiles one bed under the UDP flood: builds it as the suite does, floods for --seconds while `perf
// record` samples the director's core, and prints delivered pps, the director namespace's drop
// counters and the top of perf's report. A developer tool (docs/benchmarks.md), not part of the suite.
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { bedUp, sinkDown, sinkUp, DIRECTOR_CPU, type BedName } from './suite/beds.ts';
import { udpRun } from './suite/loads.ts';
import { runCmd } from './suite/measure.ts';

const { values } = parseArgs({
  options: {
    bed: { type: 'string', default: 'tsvs-nat' },
    seconds: { type: 'string', default: '4' },
    out: { type: 'string', default: '/tmp/tsvs-perf.data' },
    'no-perf': { type: 'boolean', default: false },
    tsvsd: { type: 'string', default: '' },
    'tc-drop': { type: 'boolean', default: false },
  },
});
if (values.tsvsd) process.env.TSVS_BENCH_TSVSD_ARGS = values.tsvsd;
const seconds = Number(values.seconds);
const bed = await bedUp(values.bed as BedName, (s) => console.error(s));
try {
  await sinkUp(bed);
  if (values['tc-drop']) {
    console.error('drop rules');
    for (const i of bed.lab.director.interfaces) await bed.lab.sh('director', `nft add table netdev tsvsdrop && nft add chain netdev tsvsdrop in_${i} '{ type filter hook ingress device ${i} priority -500; policy drop; }'`);
  }
  console.error('warm-up');
  await udpRun(bed, 1); // warm-up
  console.error('flood');
  const perf = !values['no-perf']
    ? spawn('perf', ['record', '-q', '-C', String(DIRECTOR_CPU), '-g', '-o', values.out, '--', 'sleep', String(seconds - 1)], { stdio: 'inherit' })
    : null;
  const perfDone = perf ? new Promise((res) => perf.on('exit', res)) : null;
  const r = await udpRun(bed, seconds);
  await perfDone;
  console.log(JSON.stringify({ bed: bed.name, deliveredPps: r.value, ...r.extra, cpu: r.cpu }));
  const n = await runCmd('ip', ['netns', 'exec', bed.lab.ns('director'), 'nstat', '-az'], 5000);
  console.log(n.stdout.split('\n').filter((l) => /Ip(InNoRoutes|InAddrErrors|InReceives|OutNoRoutes)|IcmpOut/.test(l) && !/\s0\s/.test(l)).join('\n'));
  await sinkDown(bed);
} finally {
  await bed.lab.down();
}
if (!values['no-perf']) {
  const rep = await runCmd('perf', ['report', '-i', values.out, '--no-children', '--sort', 'sym', '--stdio', '-g', 'none', '--percent-limit', '1.2'], 60_000);
  console.log(rep.stdout.split('\n').filter((l) => l && !l.startsWith('#')).slice(0, 45).join('\n'));
}
