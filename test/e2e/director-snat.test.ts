// tsvsd end to end, SNAT: real servers on the private NAT net (gateway the DIP) open connections to the client net; the far end sees the director's SNAT address.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { canUseNetns } from '../../src/lab/netns.ts';
import { LAB } from '../../src/lab/topology.ts';
import { requestOnce } from '../../src/ctl/client.ts';
import { withDirectorLab } from './director-harness.ts';

const SNAT = '198.18.1.60';

test('director SNAT: HTTP and 8 MB from real servers out to the client network, replies mapped back', { skip: !canUseNetns() && 'needs root', timeout: 180_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    await requestOnce(d.lab.director.socket, { op: 'snat-add', snat: { source: `${LAB.natNet}`, addr: SNAT, ifname: 'lan0' } });
    const srv = await d.lab.startProcess('client', 'pyhttp', ['python3', '-u', '-m', 'http.server', '9090', '--bind', LAB.client, '--directory', '/usr/share/doc'], { ready: /Serving HTTP/ });
    for (const r of d.lab.realServers) {
      const x = await d.lab.exec(r.role, ['curl', '-sS', '-m', '5', '-o', '/dev/null', '-w', '%{http_code}', `http://${LAB.client}:9090/`]);
      assert.equal(x.stdout, '200', `${r.role}: ${x.stderr}`);
    }
    // 8 MB down and a hash on both sides: the far end serves a file, the real server checks it.
    const big = await d.lab.exec('client', ['sh', '-c', 'head -c 8388608 /dev/urandom > /tmp/tsvs-snat-blob-$PPID && sha256sum < /tmp/tsvs-snat-blob-$PPID && echo /tmp/tsvs-snat-blob-$PPID']);
    const [hash, path] = big.stdout.trim().split('\n');
    try {
      const srv2 = await d.lab.startProcess('client', 'pyhttp2', ['python3', '-u', '-m', 'http.server', '9091', '--bind', LAB.client, '--directory', '/tmp'], { ready: /Serving HTTP/ });
      const got = await d.lab.exec('rs1', ['sh', '-c', `curl -sS -m 60 http://${LAB.client}:9091/${path!.slice(5)} | sha256sum`], 90_000);
      assert.equal(got.stdout.trim(), hash, '8 MB arrived byte for byte');
      assert.match(readFileSync(srv2.log, 'utf8'), new RegExp(`^${SNAT.replace(/\./g, '\\.')} - - .*"GET /`, 'm'));
    } finally {
      await d.lab.exec('client', ['rm', '-f', path!]);
    }
    const log = readFileSync(srv.log, 'utf8').split('\n').filter((l) => l.includes('"GET /'));
    assert.equal(log.length, d.lab.realServers.length);
    for (const l of log) assert.ok(l.startsWith(`${SNAT} - - `), `the far end sees the SNAT address: ${l}`);
    const list = await requestOnce(d.lab.director.socket, { op: 'snat-list' });
    assert.equal(list.created, d.lab.realServers.length + 1);
    assert.equal(list.exhausted, 0);
  });
});
