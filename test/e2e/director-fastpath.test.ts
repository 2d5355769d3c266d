// tsvsd end to end with --fastpath tc: the method checks (rr shares, 8 MB both ways, checksums, quiescing) pass, and the program carried the bulk (NAT, DR; TUN stays on the TS path).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { canUseNetns } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP, type DirectorLab } from './director-harness.ts';
import { checkForwarding } from './director-checks.ts';

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
