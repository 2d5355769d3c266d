// Profiles one bed under the UDP flood: builds it as the suite does, floods for --seconds while `perf
// record` samples the director's core, and prints delivered pps, the director namespace's drop
// counters and the top of perf's report. A developer tool (docs/benchmarks.md), not part of the suite:
//   node --import tsx bench/profile-bed.ts --bed tsvs-nat --seconds 6 [--no-perf] [--tsvsd='--kernel-rx pass']
import { parseArgs } from 'node:util';
import { spawn } from 'node:child_process';
import { bedUp, sinkDown, sinkUp, DIRECTOR_CPU, type BedName } from './suite/beds.ts';
import { tcpRun, udpRun } from './suite/loads.ts';
import { runCmd } from './suite/measure.ts';

const { values } = parseArgs({
  options: {
    bed: { type: 'string', default: 'tsvs-nat' },
    seconds: { type: 'string', default: '4' },
    out: { type: 'string', default: '/tmp/tsvs-perf.data' },
    'no-perf': { type: 'boolean', default: false },
    load: { type: 'string', default: 'udp' },
    cpu: { type: 'string', default: String(DIRECTOR_CPU) },
    tsvsd: { type: 'string', default: '' },
  },
});
// A reader that goes away early (`| head`) must not skip the teardown.
process.stdout.on('error', () => {});
if (values.tsvsd) process.env.TSVS_BENCH_TSVSD_ARGS = values.tsvsd;
const seconds = Number(values.seconds);
const bed = await bedUp(values.bed as BedName, (s) => console.error(s));
try {
  await sinkUp(bed);
  if (values.load !== 'tcp') await udpRun(bed, 1); // warm-up
  const perf = !values['no-perf']
    ? spawn('perf', ['record', '-q', '-C', values.cpu!, '-g', '-o', values.out, '--', 'sleep', String(seconds - 1)], { stdio: 'inherit' })
    : null;
  const perfDone = perf ? new Promise((res) => perf.on('exit', res)) : null;
  const r = values.load === 'tcp' ? await tcpRun(bed, seconds, 1) : await udpRun(bed, seconds);
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
