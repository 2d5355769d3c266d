// tsvsd end to end, FullNAT + PROXY protocol: Debian's nginx (listen ... proxy_protocol) on remote real servers logs the true client address for every request, v2 and v1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNetns } from '../../src/lab/netns.ts';
import { accessLines, haveNginx, startLabNginx } from '../../src/lab/nginx.ts';
import { LAB } from '../../src/lab/topology.ts';
import { withDirectorLab, VIP } from './director-harness.ts';

const skip = !canUseNetns() ? 'needs root' : !haveNginx() ? 'needs nginx (scripts/ensure-tools.sh installs nginx-light)' : false;

test('FullNAT + PROXY v2 and v1: nginx logs the client address for every request; shares exact', { skip, timeout: 180_000 }, async () => {
  await withDirectorLab('fullnat', async (d) => {
    const rs = d.lab.realServers;
    const logs = new Map<string, string>();
    for (const r of rs) logs.set(r.role, await startLabNginx(d.lab, r.role, [8081, 8082]));
    const lines: string[] = [];
    for (const [port, pp] of [[8081, 'v2'], [8082, 'v1']] as const) {
      lines.push(`-A -t ${VIP}:${port} -s rr --proxy-protocol ${pp}`, `-P -t ${VIP}:${port} -z ${LAB.lip} -F lan0`, ...rs.map((r) => `-a -t ${VIP}:${port} -r ${r.ip}:${port} -b`));
    }
    await d.restore(lines.join('\n') + '\n');
    const listing = await d.admOk('-L', '-n');
    assert.match(listing, new RegExp(`TCP  ${VIP.replace(/\./g, '\\.')}:8081 rr ppv2\\n`));
    assert.match(listing, new RegExp(`TCP  ${VIP.replace(/\./g, '\\.')}:8082 rr ppv1\\n`));

    const n = 10 * rs.length;
    for (const port of [8081, 8082]) {
      // One curl, so one connection, per request.
      const r = await d.lab.exec('client', ['sh', '-c', `for i in $(seq ${n}); do curl -sS -m 5 http://${VIP}:${port}/ || exit 1; done`], 60_000);
      assert.equal(r.code, 0, r.stderr);
      const answers = r.stdout.trim().split('\n');
      assert.equal(answers.length, n);
      const shares: Record<string, number> = {};
      for (const a of answers) shares[a] = (shares[a] ?? 0) + 1;
      assert.deepEqual(shares, Object.fromEntries(rs.map((x) => [x.role, 10])), `rr shares on ${port}`);
    }
    // 8 MB both ways on one PROXY v2 connection each, hashed at the client.
    const blob = '/tmp/tsvs-pp-blob-' + process.pid;
    const xfer = await d.lab.exec('client', ['sh', '-c', [
      `head -c 8388608 /dev/urandom > ${blob}`,
      // rr: three PUTs give each real server the file, three GETs then come back in the same order.
      ...[1, 2, 3].map(() => `curl -sS -m 60 -T ${blob} -o /dev/null -w '%{http_code}\\n' http://${VIP}:8081/dav/blob`),
      `sha256sum < ${blob}`,
      ...[1, 2, 3].map(() => `curl -sS -m 60 http://${VIP}:8081/dav/blob | sha256sum`),
      `rm -f ${blob}`,
    ].join(' && ')], 120_000);
    assert.equal(xfer.code, 0, xfer.stderr);
    const out = xfer.stdout.trim().split('\n');
    assert.deepEqual(out.slice(0, 3), ['201', '201', '201'], 'each PUT created the file on a real server');
    assert.deepEqual(out.slice(4), [out[3], out[3], out[3]], '8 MB came back byte for byte from each');
    for (const r of rs) {
      const log = accessLines(logs.get(r.role)!);
      assert.ok(log.length >= 20, `${r.role} served 10 requests per port (and maybe the transfers)`);
      for (const l of log) {
        const [ppAddr, ppPort, remote, port] = l.split(' ');
        assert.equal(ppAddr, LAB.client, `the true client address in every line: ${l}`);
        assert.ok(Number(ppPort) > 0);
        assert.equal(remote, LAB.lip, 'the connection itself came from the LIP');
        assert.ok(port === '8081' || port === '8082');
      }
    }
  });
});
