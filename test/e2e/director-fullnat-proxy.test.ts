// tsvsd end to end, FullNAT + PROXY protocol: Debian's nginx (listen ... proxy_protocol) and haproxy (bind ... accept-proxy) on remote real servers log the true client address for every request, v2 and v1.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNetns } from '../../src/lab/netns.ts';
import { accessLines, haveNginx, startLabNginx } from '../../src/lab/nginx.ts';
import { haveHaproxy, requestLines, startLabHaproxy } from '../../src/lab/haproxy.ts';
import { LAB } from '../../src/lab/topology.ts';
import { withDirectorLab, VIP, type DirectorLab } from './director-harness.ts';

const skip = !canUseNetns() ? 'needs root' : !haveNginx() ? 'needs nginx (scripts/ensure-tools.sh installs nginx-light)' : false;
const skipHaproxy = !canUseNetns() ? 'needs root' : !haveHaproxy() ? 'needs haproxy (scripts/ensure-tools.sh installs it)' : false;
const PER = 10;

/** FullNAT rr services with PROXY v2 on 8081 and v1 on 8082, one LIP, every real server on both. */
async function proxyServices(d: DirectorLab): Promise<void> {
  const lines: string[] = [];
  for (const [port, pp] of [[8081, 'v2'], [8082, 'v1']] as const) {
    lines.push(`-A -t ${VIP}:${port} -s rr --proxy-protocol ${pp}`, `-P -t ${VIP}:${port} -z ${LAB.lip} -F lan0`, ...d.lab.realServers.map((r) => `-a -t ${VIP}:${port} -r ${r.ip}:${port} -b`));
  }
  await d.restore(lines.join('\n') + '\n');
}

/** PER requests per real server on each port, one curl (so one connection, one header) each; rr shares exact. */
async function requestsWithExactShares(d: DirectorLab): Promise<void> {
  const rs = d.lab.realServers;
  const n = PER * rs.length;
  for (const port of [8081, 8082]) {
    const r = await d.lab.exec('client', ['sh', '-c', `for i in $(seq ${n}); do curl -sS -m 5 http://${VIP}:${port}/ || exit 1; done`], 60_000);
    assert.equal(r.code, 0, r.stderr);
    const answers = r.stdout.trim().split('\n');
    assert.equal(answers.length, n);
    const shares: Record<string, number> = {};
    for (const a of answers) shares[a] = (shares[a] ?? 0) + 1;
    assert.deepEqual(shares, Object.fromEntries(rs.map((x) => [x.role, PER])), `rr shares on ${port}`);
  }
}

test('FullNAT + PROXY v2 and v1: nginx logs the client address for every request; shares exact', { skip, timeout: 180_000 }, async () => {
  await withDirectorLab('fullnat', async (d) => {
    const rs = d.lab.realServers;
    const logs = new Map<string, string>();
    for (const r of rs) logs.set(r.role, await startLabNginx(d.lab, r.role, [8081, 8082]));
    await proxyServices(d);
    const listing = await d.admOk('-L', '-n');
    assert.match(listing, new RegExp(`TCP  ${VIP.replace(/\./g, '\\.')}:8081 rr ppv2\\n`));
    assert.match(listing, new RegExp(`TCP  ${VIP.replace(/\./g, '\\.')}:8082 rr ppv1\\n`));

    await requestsWithExactShares(d);
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

test('FullNAT + PROXY v2 and v1: haproxy accept-proxy logs the client address for every request; shares exact', { skip: skipHaproxy, timeout: 180_000 }, async () => {
  await withDirectorLab('fullnat', async (d) => {
    const rs = d.lab.realServers;
    const logs = new Map<string, string>();
    for (const r of rs) logs.set(r.role, await startLabHaproxy(d.lab, r.role, [8081, 8082]));
    await proxyServices(d);
    await requestsWithExactShares(d);
    for (const r of rs) {
      // haproxy writes the line as the request ends; give the last one a moment to reach the file.
      let log: string[] = [];
      for (let i = 0; i < 20 && (log = requestLines(logs.get(r.role)!)).length < 2 * PER; i++) await new Promise((res) => setTimeout(res, 100));
      assert.equal(log.length, 2 * PER, `${r.role} logged each of its ${PER} requests per port`);
      const ports: Record<string, number> = {};
      for (const l of log) {
        const [, ci, cp, fi, fp] = l.split(' ');
        assert.equal(ci, LAB.client, `the true client address in every line: ${l}`);
        assert.notEqual(ci, LAB.lip);
        assert.ok(Number(cp) > 0, l);
        assert.equal(fi, VIP, `the header's destination is the VIP, not the RIP: ${l}`);
        ports[fp] = (ports[fp] ?? 0) + 1;
      }
      assert.deepEqual(ports, { 8081: PER, 8082: PER }, `${r.role}: v2 on 8081, v1 on 8082`);
    }
  });
});
