// One service per scheduler family in the NAT lab: real traffic, and tsvsadm --stats agrees with the shares.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNetns } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP, serviceRows } from './director-harness.ts';

/**
 * Expected shares for sequential new connections (each closed before the next starts, so at every
 * decision all real servers have 0 active conns and the closed ones count as inactive), weights
 * rs1:1, rs2:2, rs3:3, dests listed newest first (rs3, rs2, rs1) as the kernel keeps them:
 * - wrr: gcd stepping gives exactly the weights' proportions per cycle of 6.
 * - wlc: always the least inactive/weight (cross-multiplied), so counts stay proportional to weight.
 * - fo: always the highest weight that is not overloaded: rs3.
 * - sh, dh, mh, lblc: one client address and one VIP hash or map to a single real server.
 * - twos: random; every request is answered.
 */
const CASES: Array<{ sched: string; port: number; count: number; expect: 'weights' | 'rs3' | 'one' | 'any' }> = [
  { sched: 'wrr', port: 81, count: 60, expect: 'weights' },
  { sched: 'wlc', port: 82, count: 60, expect: 'weights' },
  { sched: 'fo', port: 83, count: 12, expect: 'rs3' },
  { sched: 'sh', port: 84, count: 12, expect: 'one' },
  { sched: 'mh', port: 85, count: 12, expect: 'one' },
  { sched: 'dh', port: 86, count: 12, expect: 'one' },
  { sched: 'lblc', port: 87, count: 12, expect: 'one' },
  { sched: 'twos', port: 88, count: 12, expect: 'any' },
];

test('schedulers e2e: wrr, wlc, fo, sh, mh, dh, lblc, twos with real traffic', { skip: !canUseNetns() && 'needs root', timeout: 240_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    const rs = d.lab.realServers;
    // Each service gets its own real-server port: services sharing RIP:port would share the real
    // server's side of the 4-tuple, which neither the kernel nor tsvs can tell apart for replies.
    const ports = CASES.map((c) => c.port);
    const serve = `for (const p of ${JSON.stringify(ports)}) require('http').createServer((q, s) => { q.resume(); q.on('end', () => s.end(process.argv[1] + '\\n')); }).listen(p, () => console.log('listening ' + p));`;
    for (const r of rs) {
      await d.lab.startProcess(r.role, 'sched-http', [process.execPath, '-e', serve, r.role], { ready: new RegExp(`listening ${ports.at(-1)}`) });
    }
    const lines: string[] = [];
    for (const c of CASES) {
      lines.push(`-A -t ${VIP}:${c.port} -s ${c.sched}`);
      rs.forEach((r, i) => lines.push(`-a -t ${VIP}:${c.port} -r ${r.ip}:${c.port} -m -w ${i + 1}`));
    }
    await d.restore(lines.join('\n') + '\n');
    const results = new Map<string, Record<string, number>>();
    for (const c of CASES) {
      const r = await d.client('http', c.port, c.count);
      assert.equal(r.failed, 0, `${c.sched}: ${r.errors.join('; ')}`);
      results.set(c.sched, r.byServer);
      const counts = rs.map((x) => r.byServer[x.role] ?? 0);
      if (c.expect === 'weights') assert.deepEqual(counts, [10, 20, 30], `${c.sched} shares`);
      else if (c.expect === 'rs3') assert.deepEqual(counts, [0, 0, c.count], `${c.sched} shares`);
      else if (c.expect === 'one') assert.equal(Math.max(...counts), c.count, `${c.sched}: one real server takes all (${counts})`);
      else assert.equal(counts.reduce((a, b) => a + b, 0), c.count);
    }
    const stats = await d.admOk('-L', '-n', '--stats');
    for (const c of CASES) {
      const listed = serviceRows(stats, 'TCP', `${VIP}:${c.port}`).map((f) => Number(f[1]));
      // The listing sorts real servers by address: rs1, rs2, rs3.
      const counted = rs.map((x) => results.get(c.sched)![x.role] ?? 0);
      assert.deepEqual(listed, counted, `${c.sched}: --stats conns per real server match the client's tally\n${stats}`);
    }
  });
});
