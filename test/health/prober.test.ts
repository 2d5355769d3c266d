// Probes from inside another network namespace: socket checks through the helper process, ping and commands through ip netns exec.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createProber } from '../../src/health/prober.ts';
import { runCheck } from '../../src/health/checks.ts';
import { canUseNetns, withNetns, waitFor } from '../../src/lab/netns.ts';

test('prober: checks run inside the configured namespace', { timeout: 60_000 }, async (t) => {
  if (!canUseNetns()) return t.skip('needs root for network namespaces');
  await withNetns('hc', async (n) => {
    const ns = await n.add('probe');
    // A veth whose peer has no address: ARP for 198.18.3.2 goes unanswered, the timeout case.
    await n.sh('probe', 'ip link add d0 type veth peer name d1 && ip addr add 198.18.3.1/24 dev d0 && ip link set d0 up && ip link set d1 up');
    const port = 20000 + (process.pid % 20000);
    const srv = n.spawn('probe', [process.execPath, '-e', `require('net').createServer((s)=>s.end()).listen(${port},'127.0.0.1',()=>console.log('ready'))`]);
    let ready = false;
    srv.stdout!.on('data', (d: Buffer) => (ready ||= d.toString().includes('ready')));
    await waitFor('listener in the namespace', () => ready);
    const prober = createProber();
    try {
      const inNs = await prober.probe({ type: 'tcp', host: '127.0.0.1', port, timeoutMs: 5000, netns: ns });
      assert.equal(inNs.ok, true, inNs.detail);
      // The same port in this namespace is closed, so the success above came from the namespace.
      const here = await runCheck({ type: 'tcp', host: '127.0.0.1', port, timeoutMs: 1000 });
      assert.equal(here.ok, false, here.detail);
      const black = await prober.probe({ type: 'tcp', host: '198.18.3.2', port: 80, timeoutMs: 300, netns: ns, source: '198.18.3.1' });
      assert.equal(black.ok, false);
      assert.match(black.detail, /timeout/);
      const http = await prober.probe({ type: 'http', host: '127.0.0.1', port, timeoutMs: 1000, netns: ns });
      assert.equal(http.ok, false, 'a TCP-only server is not an HTTP server');
      const misc = await prober.probe({ type: 'misc', host: '127.0.0.1', port: 0, timeoutMs: 5000, command: 'ip link show d0', netns: ns });
      assert.equal(misc.ok, true, misc.detail);
      const miscHere = await runCheck({ type: 'misc', host: '127.0.0.1', port: 0, timeoutMs: 5000, command: 'ip link show d0 2>/dev/null' });
      assert.equal(miscHere.ok, false);
      const ping = await prober.probe({ type: 'ping', host: '198.18.3.1', port: 0, timeoutMs: 2000, netns: ns });
      assert.equal(ping.ok, true, ping.detail);
    } finally {
      prober.close();
    }
  });
});
