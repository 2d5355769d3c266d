// The lab of DESIGN.md §5 without a director: each segment carries real traffic, real servers answer, down leaves nothing.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { canUseNetns } from '../../src/lab/netns.ts';
import { labUp, listNamespaces, namespacePids, LAB, type LabMode } from '../../src/lab/topology.ts';
import { probe } from '../lab/run.ts';

const skip = !canUseNetns() && 'needs root';

for (const mode of ['nat', 'dr', 'tun'] as LabMode[]) {
  test(`lab ${mode}: segments carry traffic, real servers answer, down leaves nothing`, { skip }, async () => {
    const lab = await labUp({ mode, servers: 2, name: 'topo' });
    const names = Object.values(lab.state.namespaces);
    let pids: number[] = [];
    try {
      const [rs1, rs2] = lab.realServers as [(typeof lab.realServers)[0], (typeof lab.realServers)[0]];
      const ping = async (role: string, ip: string) => {
        const r = await lab.exec(role, ['ping', '-c', '1', '-W', '2', ip]);
        return r.code === 0 && /1 received/.test(r.stdout);
      };
      assert.ok(await ping('client', LAB.routerClient), 'client → router');

      // The director holds its interfaces with no kernel address and IPv6 off: tsvsd answers for it.
      // Only its management link (mgmt0, where health checks leave from) has a kernel address.
      const addrs = await lab.sh('director', 'ip -o -4 addr show');
      assert.deepEqual(addrs.trim().split('\n').map((l) => l.split(/\s+/)[1]), ['lo', 'mgmt0'], addrs);
      assert.equal((await lab.exec('director', ['curl', '-s', '-m', '3', `http://${rs1.ip}:${lab.state.ports.http}/`])).stdout, 'rs1\n', 'health checks reach the real servers from mgmt0');
      for (const i of lab.director.interfaces) {
        assert.equal((await lab.sh('director', `cat /proc/sys/net/ipv6/conf/${i}/disable_ipv6`)).trim(), '1');
        assert.match(await lab.sh('director', `ip -o link show ${i}`), /state UP/);
      }

      const curl = (role: string, ip: string) => lab.exec(role, ['curl', '-s', '-m', '3', `http://${ip}:${lab.state.ports.http}/`]);
      if (mode === 'dr') {
        assert.ok(await ping('router', rs1.ip), 'router → DR rs1');
        assert.ok(await ping('router', rs2.ip), 'router → DR rs2');
        assert.equal((await curl('router', rs1.ip)).stdout, 'rs1\n');
        // The client reaches a DR real server through the router too (its gateway).
        assert.equal((await curl('client', rs2.ip)).stdout, 'rs2\n');
      }
      if (mode === 'tun') {
        assert.ok(await ping('router', rs1.ip), 'router → TUN rs1');
        assert.ok(await ping('router', rs2.ip), 'router → TUN rs2');
        assert.equal((await curl('router', rs2.ip)).stdout, 'rs2\n');
      }
      if (mode === 'nat') {
        // NAT real servers share a segment with the DIP only: reachable from a neighbour, not from outside.
        assert.equal((await curl('rs2', rs1.ip)).stdout, 'rs1\n');
        assert.ok(!(await ping('client', rs1.ip)), 'the client must not reach a NAT real server directly');
        assert.match(await lab.sh('rs1', 'ip -4 route show default'), new RegExp(`via ${LAB.dip.replace(/\./g, '\\.')}`));
      }
      const neighbour = mode === 'nat' ? 'rs2' : 'router';
      const echo = await lab.exec(neighbour, probe('ask', rs1.ip, String(lab.state.ports.udp), 'hello'));
      assert.equal(echo.stdout, 'rs1 hello', echo.stderr);

      if (mode === 'tun') {
        // Play the director: an IPIP packet DIP → RIP carrying CIP → VIP. rs1's decapsulator delivers it,
        // the UDP echo answers from the VIP straight to the client through the router.
        const listener = lab.exec('client', probe('listen', LAB.client, '40000'), 15_000);
        await new Promise((r) => setTimeout(r, 1500));
        const sent = await lab.exec('router', probe('ipip', rs1.ip, LAB.client, LAB.vip, '40000', String(lab.state.ports.udp), 'via-tunnel'));
        assert.equal(sent.code, 0, sent.stderr);
        const got = await listener;
        assert.equal(got.code, 0, got.stderr);
        assert.equal(got.stdout, `from ${LAB.vip}:${lab.state.ports.udp} rs1 via-tunnel`);
      }
      pids = (await Promise.all(names.map(namespacePids))).flat();
      assert.ok(pids.length >= 2, 'the real-server programs run inside the lab');
    } finally {
      await lab.down();
    }
    const left = (await listNamespaces()).filter((n) => names.includes(n));
    assert.deepEqual(left, [], 'namespaces left behind');
    for (const pid of pids) assert.ok(!existsSync(`/proc/${pid}`), `process ${pid} left behind`);
    assert.ok(!existsSync(lab.state.dir), 'lab directory left behind');
    await lab.down(); // idempotent
  });
}
