// Connection sync end to end: two tsvsd on one LAN, master → backup over owned interfaces, tshark decoding the wire, a takeover.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { canUseNetns, Netns, must, run, waitFor } from '../../src/lab/netns.ts';
import { LAB, labMac } from '../../src/lab/topology.ts';
import { requestOnce } from '../../src/ctl/client.ts';
import { withDirectorLab, ROOT, VIP } from './director-harness.ts';

/** The backup director's own LAN address (.2 is the master's, .3 its management link). */
const BACKUP_LAN = '198.18.1.4';
/** The backup's management link, a kernel interface. */
const BACKUP_MGMT = '198.18.1.5';

/** Starts `cmd` in `role` and waits until its stderr matches `ready`. */
async function startIn(n: Netns, role: string, cmd: string[], ready: RegExp): Promise<{ child: ChildProcess; err: () => string }> {
  const child = n.spawn(role, cmd);
  let err = '';
  child.stderr!.on('data', (b: Buffer) => (err += b.toString()));
  child.stdout!.on('data', () => {});
  await waitFor(`${cmd[0]} in ${role}`, () => {
    if (child.exitCode !== null) throw new Error(`${cmd.join(' ')} exited ${child.exitCode}: ${err}`);
    return ready.test(err);
  }, 30_000);
  return { child, err: () => err };
}

/** `-L -n -c` rows as [proto, expire, state, source, virtual, destination]. */
function connRows(listing: string): string[][] {
  return listing.split('\n').slice(2).filter((l) => l.trim() !== '').map((l) => l.trim().split(/\s+/));
}

test('sync: a master tsvsd syncs its conns to a backup tsvsd; tshark decodes the messages; the backup carries them on after a takeover',
  { skip: !canUseNetns() && 'needs root', timeout: 180_000 }, async () => {
    await withDirectorLab('dr', async (d) => {
      const rs = d.lab.realServers;
      const services = [`-A -t ${VIP}:80 -s rr`, ...rs.map((r) => `-a -t ${VIP}:80 -r ${r.ip} -g`)].join('\n') + '\n';
      await d.restore(services);
      const n = Netns.create('sync');
      const dir = mkdtempSync(join(tmpdir(), `tsvs-${process.pid}-sync-`));
      try {
        // The backup director: a second host on the service LAN, without the VIP.
        await n.add('backup');
        await must('ip', ['link', 'add', 'lan0', 'address', labMac(BACKUP_LAN), 'netns', n.ns('backup'), 'type', 'veth', 'peer', 'name', 'l-backup', 'netns', d.lab.ns('switch')]);
        // A kernel interface too (a management link with a kernel address), for sync over a socket tsvsd's main thread holds.
        await must('ip', ['link', 'add', 'mgmt0', 'address', labMac(BACKUP_MGMT), 'netns', n.ns('backup'), 'type', 'veth', 'peer', 'name', 'm-backup', 'netns', d.lab.ns('switch')]);
        await d.lab.sh('switch', 'ip link set l-backup master lan && ip link set l-backup up && ip link set m-backup master lan && ip link set m-backup up');
        await n.sh('backup', `ip link set lan0 up && ip addr add ${BACKUP_MGMT}/24 dev mgmt0 && ip link set mgmt0 up && sysctl -qw net.ipv4.ip_forward=0`);
        const sock2 = join(dir, 'backup.sock');
        const capture = join(dir, 'sync.pcap');
        // tshark on the backup's wire, beside tsvsd's own packet socket: what any host on the LAN sees.
        const tshark = await startIn(n, 'backup', ['tshark', '-i', 'lan0', '-f', 'udp port 8848', '-w', capture], /Capturing on/);
        await startIn(n, 'backup', [process.execPath, `${ROOT}bin/tsvsd.mjs`, '--interface', 'lan0', '--address', `${BACKUP_LAN}/24@lan0`,
          '--route', `${LAB.clientNet}=${LAB.routerLan}`, '--gateway', LAB.routerLan, '--socket', sock2], /control socket listening/);
        const adm2 = (...args: string[]) => run(process.execPath, [`${ROOT}bin/tsvsadm.mjs`, '--socket', sock2, ...args], 30_000);
        const restore2 = await run('sh', ['-c', `printf '%s' "$1" | ${process.execPath} ${ROOT}bin/tsvsadm.mjs --socket ${sock2} -R`, 'sh', services]);
        assert.equal(restore2.code, 0, restore2.stderr);

        // The daemons, with ipvsadm's syntax, output and errors.
        await d.admOk('--start-daemon', 'master', '--mcast-interface', 'lan0', '--syncid', '7');
        assert.equal((await adm2('--start-daemon', 'backup', '--mcast-interface', 'lan0', '--syncid', '7')).code, 0);
        assert.equal(await d.admOk('-L', '--daemon'), 'master sync daemon (mcast=lan0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n');
        assert.equal((await adm2('-L', '--daemon')).stdout, 'backup sync daemon (mcast=lan0, syncid=7, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n');
        const again = await d.adm('--start-daemon', 'master', '--mcast-interface', 'lan0');
        assert.deepEqual([again.code, again.stderr], [255, 'Daemon has already run\n']);
        const nodev = await adm2('--start-daemon', 'master', '--mcast-interface', 'nosuch0');
        assert.deepEqual([nodev.code, nodev.stderr], [255, 'No such device\n']);
        const none = await adm2('--stop-daemon', 'master');
        assert.deepEqual([none.code, none.stderr], [255, 'No daemon is running\n']);

        // Long-lived connections (one request each, kept open) and a few short ones through the master.
        const keep = [];
        for (let i = 0; i < 3; i++) keep.push(await d.keepAlive(80));
        const short = await d.client('http', 80, 6, 2);
        assert.equal(short.ok, 6);
        // A message that is not full leaves within IPVS_SYNC_FLUSH_TIME (2 s).
        let master: string[][] = [];
        let backup: string[][] = [];
        await waitFor('the backup to list every established conn of the master', async () => {
          master = connRows(await d.admOk('-L', '-n', '-c')).filter((r) => r[2] === 'ESTABLISHED');
          backup = connRows((await adm2('-L', '-n', '-c')).stdout);
          return master.length >= 3 && master.every((m) => backup.some((b) => b[2] === 'ESTABLISHED' && b[3] === m[3] && b[4] === m[4] && b[5] === m[5]));
        }, 10_000, 250);
        assert.ok(backup.every((b) => rs.some((r) => b[5] === `${r.ip}:80`) && b[4] === `${VIP}:80`), JSON.stringify(backup));

        // The capture, decoded by Wireshark's IPVS dissector.
        await n.stop(tshark.child);
        const dec = await run('tshark', ['-r', capture, '-d', 'udp.port==8848,ipvs', '-Y', 'ipvs', '-T', 'fields', '-E', 'separator=;',
          '-e', 'ip.src', '-e', 'ip.dst', '-e', 'ip.ttl', '-e', 'ipvs.syncid', '-e', 'ipvs.version', '-e', 'ipvs.conncount',
          '-e', 'ipvs.caddr', '-e', 'ipvs.cport', '-e', 'ipvs.vaddr', '-e', 'ipvs.vport', '-e', 'ipvs.daddr', '-e', 'ipvs.dport', '-e', 'ipvs.state', '-e', 'ipvs.timeout', '-e', '_ws.malformed']);
        assert.equal(dec.code, 0, dec.stderr);
        const msgs = dec.stdout.trim().split('\n').map((l) => l.split(';'));
        assert.ok(msgs.length >= 1);
        const seen = new Set<string>();
        for (const m of msgs) {
          assert.deepEqual(m.slice(0, 5), [LAB.directorLan, '224.0.0.81', '1', '7', '1'], m.join(';'));
          assert.equal(m[14], '', 'not malformed');
          const count = Number(m[5]);
          const col = (i: number) => m[i]!.split(',');
          assert.equal(col(6).length, count);
          for (let k = 0; k < count; k++) if (col(12)[k] === '0x0001') seen.add(`${col(6)[k]}:${col(7)[k]} ${col(8)[k]}:${col(9)[k]} ${col(10)[k]}:${col(11)[k]} ${col(13)[k]}`);
        }
        for (const m of master) assert.ok(seen.has(`${m[3]} ${m[4]} ${m[5]} 900`), `${m.join(' ')} in ${[...seen].join(', ')}`);

        // The same over kernel interfaces (the master's and the backup's mgmt0): the sockets of tsvsd's main thread.
        await d.admOk('--stop-daemon', 'master');
        assert.equal((await adm2('--stop-daemon', 'backup')).code, 0);
        assert.equal(await d.admOk('-L', '--daemon'), '');
        await d.admOk('--start-daemon', 'master', '--mcast-interface', 'mgmt0', '--syncid', '7');
        assert.equal((await adm2('--start-daemon', 'backup', '--mcast-interface', 'mgmt0')).code, 0);
        assert.equal((await adm2('-L', '--daemon')).stdout, 'backup sync daemon (mcast=mgmt0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n');
        const before = new Set(master.map((m) => m[3]));
        keep.push(await d.keepAlive(80));
        await waitFor('the conn opened since to reach the backup over the kernel interfaces', async () => {
          master = connRows(await d.admOk('-L', '-n', '-c')).filter((r) => r[2] === 'ESTABLISHED');
          const fresh = master.filter((m) => !before.has(m[3]));
          backup = connRows((await adm2('-L', '-n', '-c')).stdout);
          return fresh.length === 1 && backup.some((b) => b[2] === 'ESTABLISHED' && b[3] === fresh[0]![3] && b[5] === fresh[0]![5]);
        }, 10_000, 250);

        // Takeover: the master dies; the backup takes the VIP (as VRRP would) and the open connections go on to their real servers.
        const masterProc = d.lab.state.procs.find((p) => p.role === 'director' && p.what === 'tsvsd');
        assert.ok(masterProc);
        process.kill(masterProc.pid, 'SIGKILL');
        await requestOnce(sock2, { op: 'address-add', address: { addr: VIP, plen: 32, ifname: 'lan0' } });
        for (const k of keep) {
          const r = await k.second();
          assert.deepEqual([r.server, r.sameSocket], [k.first, true]);
        }
        // Closed now, but by the backup: the conns it took over moved on from ESTABLISHED there.
        const after = connRows((await adm2('-L', '-n', '-c')).stdout);
        for (const m of master) assert.ok(after.some((a) => a[3] === m[3] && a[5] === m[5] && a[2] !== 'ESTABLISHED'), JSON.stringify(after));
      } finally {
        await n.destroy();
        rmSync(dir, { recursive: true, force: true });
      }
    }, 2);
  });
