// The kernel-interface sync sockets (tsvsd's main thread) in namespaces: an interface without an IPv4 address
// is refused, the master leaves by its interface whatever the routes say, the backup takes its own
// interface's datagrams only, and a flood the data plane cannot take is capped and counted.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, withNetns, waitFor } from '../../src/lab/netns.ts';

const skip = !canUseNetns() && 'needs root (network namespaces)';
const src = (p: string) => new URL(`../../src/${p}`, import.meta.url).pathname;

/** A node script that sends `n` datagrams from `addr` to 224.0.0.81:8848 out of the interface holding `addr`. */
function sender(addr: string, n: number): string[] {
  const js = `
    import dgram from 'node:dgram';
    const s = dgram.createSocket('udp4');
    s.bind({ address: '${addr}', port: 0 }, async () => {
      s.setMulticastInterface('${addr}');
      s.setMulticastTTL(1);
      const b = new Uint8Array(64);
      for (let i = 0; i < ${n}; i++) {
        await new Promise((r) => s.send(b, 8848, '224.0.0.81', r));
        if (i % 50 === 49) await new Promise((r) => setTimeout(r, 5));
      }
      s.close();
    });`;
  return [process.execPath, '--input-type=module', '-e', js];
}

test('kernel-interface sync sockets: address required, IP_MULTICAST_IF, other interfaces\' datagrams and floods refused and counted', { skip, timeout: 90_000 }, async () => {
  await withNetns('syr', async (n) => {
    for (const r of ['x', 'y', 'z']) await n.add(r);
    await n.veth('x', 'xa', 'y', 'ya');
    await n.veth('x', 'xb', 'z', 'zb');
    await n.veth('x', 'xn', 'z', 'zn');
    await n.ip('x', 'addr', 'add', '198.18.90.1/24', 'dev', 'xa');
    await n.ip('y', 'addr', 'add', '198.18.90.2/24', 'dev', 'ya');
    await n.ip('x', 'addr', 'add', '198.18.91.1/24', 'dev', 'xb');
    await n.ip('z', 'addr', 'add', '198.18.91.2/24', 'dev', 'zb');
    // The default route (and so an unpinned multicast send) leaves by xb, not the sync link xa.
    await n.ip('x', 'route', 'add', 'default', 'via', '198.18.91.2');
    const dir = mkdtempSync(join(tmpdir(), 'tsvs-syr-'));
    try {
      const driver = `
        import { existsSync, writeFileSync } from 'node:fs';
        import dgram from 'node:dgram';
        import { KernelSyncSockets, RELAY, RELAY_RX_MAX } from '${src('ipvs/sync/kernel-socket.ts')}';
        import { SyncDaemons } from '${src('ipvs/sync/daemon.ts')}';
        import { Ipvs } from '${src('ipvs/service.ts')}';
        import { Director } from '${src('dp/director.ts')}';
        const sh = new Int32Array(new SharedArrayBuffer(RELAY.SLOTS * 4));
        let got = 0;
        const k = new KernelSyncSockets(() => got++, () => {}, sh);
        const e = (state, ifn) => ({ state, mcastIfn: ifn, syncid: 0, maxlen: 1472, group: '224.0.0.81', port: 8848, ttl: 1 });
        const until = async (f) => { const end = Date.now() + 20000; while (!existsSync('${dir}/' + f) && Date.now() < end) await new Promise((r) => setTimeout(r, 20)); };
        const out = { max: RELAY_RX_MAX };
        // start-daemon on a kernel interface without an IPv4 address: refused before any socket is asked for.
        const asked = [];
        const sd = new SyncDaemons(new Ipvs({ connCapacity: 1024, statsSlots: 16 }), new Director([]), () => undefined, () => {},
          { open: (s) => asked.push(s), close: () => {}, send: () => true });
        try { sd.start({ state: 'master', mcastIfn: 'xn', syncid: 0, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 }); out.sdNoaddr = 'started'; }
        catch (err) { out.sdNoaddr = err.message; }
        out.sdAsked = asked.length;
        out.sdRunning = sd.list().length;
        try { await k.open('master', e('master', 'xn')); out.noaddr = 'opened'; } catch (err) { out.noaddr = err.message; }
        await k.open('backup', e('backup', 'xa'));
        // Another program joined the group on xb: the kernel now takes it there too, for every socket bound to it.
        const other = dgram.createSocket({ type: 'udp4', reuseAddr: true });
        await new Promise((r) => other.bind(8848, '224.0.0.81', r));
        other.addMembership('224.0.0.81', '198.18.91.1');
        writeFileSync('${dir}/ready', '');
        await until('sent');
        await new Promise((r) => setTimeout(r, 300));
        out.got = got;
        out.otherIf = Atomics.load(sh, RELAY.RX_OTHER_IF);
        await k.open('master', e('master', 'xa'));
        await until('listening');
        k.send(new Uint8Array(100));
        k.send(new Uint8Array(100));
        await new Promise((r) => setTimeout(r, 300));
        writeFileSync('${dir}/sent2', '');
        await until('flooded');
        await new Promise((r) => setTimeout(r, 500));
        out.gotAfterFlood = got;
        out.queueFull = Atomics.load(sh, RELAY.RX_QUEUE_FULL);
        out.txFailed = Atomics.load(sh, RELAY.TX_FAILED);
        k.closeAll();
        other.close();
        console.log(JSON.stringify(out));`;
      const drv = n.spawn('x', [process.execPath, '--import', 'tsx', '--input-type=module', '-e', driver]);
      let stdout = '';
      let stderr = '';
      drv.stdout!.on('data', (b: Buffer) => (stdout += b.toString()));
      drv.stderr!.on('data', (b: Buffer) => (stderr += b.toString()));
      const done = new Promise<number>((r) => drv.once('exit', (c) => r(c ?? -1)));
      await waitFor('driver ready', () => existsSync(`${dir}/ready`) || drv.exitCode !== null, 30_000);
      assert.equal(drv.exitCode, null, stderr);
      assert.equal((await n.exec('y', sender('198.18.90.2', 3))).code, 0);
      assert.equal((await n.exec('z', sender('198.18.91.2', 3))).code, 0);
      writeFileSync(`${dir}/sent`, '');
      // On the sync link's far side: who sends to the group, from which address.
      const listen = `
        import dgram from 'node:dgram';
        import { writeFileSync } from 'node:fs';
        const s = dgram.createSocket({ type: 'udp4', reuseAddr: true });
        const from = [];
        s.on('message', (m, r) => from.push(r.address + ':' + m.length));
        s.bind(8848, '224.0.0.81', () => { s.addMembership('224.0.0.81', '198.18.90.2'); writeFileSync('${dir}/listening', ''); });
        setTimeout(() => { console.log(JSON.stringify(from)); s.close(); }, 3000);`;
      const ly = n.exec('y', [process.execPath, '--input-type=module', '-e', listen], 20_000);
      const lz = n.exec('z', [process.execPath, '--input-type=module', '-e', listen.replace('198.18.90.2', '198.18.91.2').replace(`${dir}/listening`, `${dir}/listening-z`)], 20_000);
      await waitFor('sent2', () => existsSync(`${dir}/sent2`), 20_000);
      const [ry, rz] = await Promise.all([ly, lz]);
      assert.equal(ry.code, 0, ry.stderr);
      // Now a flood the data plane "does not take" (the driver never lowers the in-flight count).
      assert.equal((await n.exec('y', sender('198.18.90.2', 1200), 30_000)).code, 0);
      writeFileSync(`${dir}/flooded`, '');
      assert.equal(await done, 0, stderr);
      const out = JSON.parse(stdout.trim().split('\n').pop()!) as Record<string, number | string>;
      assert.match(String(out.noaddr), /xn has no IPv4 address/);
      assert.match(String(out.sdNoaddr), /interface xn has no IPv4 address; give it one/);
      assert.deepEqual([out.sdAsked, out.sdRunning], [0, 0], 'nothing started, no socket asked for');
      assert.equal(out.got, 3, 'only the sync link\'s three datagrams reach the data plane');
      assert.equal(out.otherIf, 3, 'the three from the other interface are counted');
      assert.deepEqual(JSON.parse(ry.stdout.trim().split('\n').pop()!), ['198.18.90.1:100', '198.18.90.1:100'], 'the master sends from and by the sync link');
      assert.deepEqual(JSON.parse(rz.stdout.trim().split('\n').pop()!), [], 'nothing leaves by the default route');
      assert.equal(out.gotAfterFlood, out.max, 'the flood is capped at RELAY_RX_MAX in flight');
      assert.ok(Number(out.queueFull) >= 1200 + 3 - Number(out.max) - 50, `queue_full ${out.queueFull}`);
      assert.equal(out.txFailed, 0);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
