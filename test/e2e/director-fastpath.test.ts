// tsvsd end to end with --fastpath tc: the method checks (rr shares, 8 MB both ways, checksums, quiescing) pass, and the program carried the bulk (NAT, DR; TUN stays on the TS path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP, type DirectorLab } from './director-harness.ts';
import { checkForwarding } from './director-checks.ts';
import { runTrace } from '../../src/cli/trace.ts';

const skip = !canUseNetns() && 'needs root';

/** The last fast-path report tsvsd logged (debug, once a second while the program carries packets). */
function fastReport(d: DirectorLab): { packets: number; ring: number } | null {
  const text = readFileSync(join(d.lab.state.dir, 'director-tsvsd.log'), 'utf8');
  const all = [...text.matchAll(/(\d+) packets \(\d+ bytes\) carried; the packet sockets received (\d+) frames/g)];
  const m = all.at(-1);
  return m ? { packets: Number(m[1]), ring: Number(m[2]) } : null;
}

for (const [mode, flag, method, tcpPort] of [['nat', '-m', 'Masq', 8080], ['dr', '-g', 'Route', 80], ['tun', '-i', 'Tunnel', 80]] as const) {
  test(`director ${mode.toUpperCase()} with --fastpath tc: forwarding checks pass and established traffic took the fast path`, { skip, timeout: 240_000 }, async () => {
    await withDirectorLab(mode, async (d) => {
      const rs = d.lab.realServers;
      const rport = mode === 'nat' ? ':80' : '';
      await d.restore(
        [`-A -t ${VIP}:${tcpPort} -s rr`, ...rs.map((r) => `-a -t ${VIP}:${tcpPort} -r ${r.ip}${rport} ${flag}`), `-A -u ${VIP}:53 -s rr`, ...rs.map((r) => `-a -u ${VIP}:53 -r ${r.ip}${mode === 'nat' ? ':53' : ''} ${flag}`)].join('\n') + '\n',
      );
      assert.match(readFileSync(join(d.lab.state.dir, 'director-tsvsd.log'), 'utf8'), /fast path on/);
      await checkForwarding(d, { tcpPort, udpPort: 53, rsPort: 80, method });
      // The fold runs once a second; wait for the report that covers the transfer.
      await new Promise((r) => setTimeout(r, 2500));
      const rep = fastReport(d);
      if (mode === 'tun') {
        // TUN stays on the TS path (the lab's real servers decapsulate from a raw socket, which loses
        // the offload state the program would hand over): nothing may have been carried.
        assert.equal(rep, null, 'TUN conns are not installed');
        return;
      }
      assert.ok(rep, 'tsvsd reported fast-path traffic');
      console.log(`# ${mode}: the program carried ${rep.packets} packets; the packet sockets received ${rep.ring} frames`);
      // 8 MB through the director is hundreds of GSO skbs (each counts once) plus the ACKs; the ring
      // saw the handshakes, FINs and first packets of some 70 connections, not the bulk.
      assert.ok(rep.packets > 200, `packets carried by the program: ${rep.packets}`);
      assert.ok(rep.ring < rep.packets, `the packet sockets received ${rep.ring} frames, the program carried ${rep.packets}`);
    }, 3, ['--fastpath', 'tc', '--log-level', 'debug']);
  });
}

test('director NAT with --fastpath tc: a UDP conn the program carries outlives its timeout by last-seen, then expires on time', { skip, timeout: 120_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    const rs = d.lab.realServers;
    await d.restore([`-A -u ${VIP}:53 -s rr`, ...rs.map((r) => `-a -u ${VIP}:53 -r ${r.ip}:53 -m`)].join('\n') + '\n');
    await d.admOk('--set', '0', '0', '3'); // UDP timeout 3 s
    // One client socket (a fixed source port) sends a datagram every 700 ms for 7 s: after the first,
    // the TS path sees none of them, so only last-seen keeps the conn past its 3 s timeout.
    const script = `
      const s = require('node:dgram').createSocket('udp4');
      const servers = [];
      let last = 0;
      s.on('message', (m) => servers.push(m.toString().split(' ')[0]));
      s.bind(40555, () => {
        let i = 0;
        const t = setInterval(() => {
          if (i++ === 10) { clearInterval(t); setTimeout(() => { console.log(JSON.stringify({ servers, last })); s.close(); }, 500); return; }
          s.send('ping-' + i, 53, '${VIP}');
          last = Date.now();
        }, 700);
      });`;
    const conn = /UDP\s+\d\d:\d\d\s+UDP\s+198\.18\.0\.2:40555\s/;
    const run = d.lab.exec('client', [process.execPath, '-e', script], 30_000);
    await new Promise((r) => setTimeout(r, 5000));
    assert.match(await d.admOk('-L', '-n', '-c'), conn, 'the conn is still there 5 s in (timeout 3 s): the program carried its packets');
    const r = await run;
    assert.equal(r.code, 0, r.stderr);
    const { servers, last } = JSON.parse(r.stdout.trim()) as { servers: string[]; last: number };
    assert.equal(servers.length, 10, 'every datagram answered');
    assert.equal(new Set(servers).size, 1, `one real server answered all: the conn was never re-scheduled (${servers.join(',')})`);
    const stop = last; // the last datagram (same host clock)
    await new Promise((res) => setTimeout(res, Math.max(0, stop + 1000 - Date.now())));
    assert.match(await d.admOk('-L', '-n', '-c'), conn, 'still there 1 s after the last datagram');
    let goneAt = 0;
    while (Date.now() - stop < 8000) {
      if (!conn.test(await d.admOk('-L', '-n', '-c'))) {
        goneAt = Date.now() - stop;
        break;
      }
      await new Promise((res) => setTimeout(res, 200));
    }
    assert.ok(goneAt > 0, 'the idle conn expired');
    assert.ok(goneAt >= 2500 && goneAt <= 6000, `expired ${goneAt} ms after its last packet (timeout 3 s)`);
    const rep = fastReport(d);
    assert.ok(rep && rep.packets >= 15, `the program carried the datagrams and replies: ${JSON.stringify(rep)}`);
    // --stats equals the client's tally: 10 datagrams in, 10 answers out, their IP bytes.
    const stats = await d.admOk('-L', '-n', '--stats', '--exact');
    const row = stats.split('\n').find((l) => l.startsWith(`UDP  ${VIP}:53 `));
    assert.ok(row, stats);
    const [, , conns, inPkts, outPkts, inBytes, outBytes] = row.trim().split(/\s+/).map((x, k) => (k < 2 ? 0 : Number(x)));
    const sent = Array.from({ length: 10 }, (_, i) => 28 + `ping-${i + 1}`.length);
    const answers = Array.from({ length: 10 }, (_, i) => 28 + `${servers[0]} ping-${i + 1}`.length);
    assert.deepEqual([conns, inPkts, outPkts, inBytes, outBytes], [1, 10, 10, sent.reduce((a, b) => a + b), answers.reduce((a, b) => a + b)], stats);
  }, 3, ['--fastpath', 'tc', '--log-level', 'debug']);
});

test('director NAT with --fastpath tc: a trace started on an established fast-path connection shows its packets', { skip, timeout: 120_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    await d.restore(`-A -t ${VIP}:8080 -s rr\n-a -t ${VIP}:8080 -r ${d.lab.realServers[0]!.ip}:80 -m\n`);
    // The first request establishes the connection: the program carries it from then on.
    const ka = await d.keepAlive(8080);
    await new Promise((r) => setTimeout(r, 1500));
    const before = fastReport(d);
    assert.ok(before && before.packets > 0, 'the established connection was on the fast path');
    const lines: string[] = [];
    const tracing = runTrace({ socket: d.lab.director.socket, cip: '198.18.0.2', port: 8080, count: 4, timeoutMs: 15_000 }, (s) => lines.push(s));
    await new Promise((r) => setTimeout(r, 300));
    const second = await ka.second();
    assert.equal(second.sameSocket, true, 'the same connection');
    const packets = await tracing;
    assert.equal(packets.length, 4, `the trace saw the second request's packets: ${lines.join(' | ')}`);
    assert.ok(packets.some((p) => p.steps[0]!.daddr === VIP), 'client → VIP packets traced');
    assert.ok(packets.some((p) => p.steps[0]!.saddr === d.lab.realServers[0]!.ip), 'replies traced');
  }, 1, ['--fastpath', 'tc', '--log-level', 'debug']);
});
