// AF_PACKET ports end to end: the L2 forwarder carries ping and TCP both ways, offloads at defaults and
// with checksum completion forced on its egress; opening errors are typed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, existsSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canUseNetns, withNetns, waitFor } from '../../src/lab/netns.ts';
import { AfPacketPort } from '../../src/io/afpacket.ts';
import { IoError } from '../../src/io/errors.ts';
import { withL2fwdLab } from '../../src/lab/l2fwd-lab.ts';
import { bothWays } from './l2fwd-checks.ts';

const skip = !canUseNetns() && 'needs root (network namespaces, AF_PACKET)';
const MB = 1 << 20;

test('afpacket l2fwd: ping and TCP A<->B with default offloads (GSO frames cross whole)', { skip, timeout: 120_000 }, async () => {
  await withL2fwdLab({ io: 'afpacket', tag: 'afd' }, async (lab) => {
    const before = { a: await lab.csumErrors('a'), b: await lab.csumErrors('b') };
    await bothWays(lab, 20 * MB);
    const s = await lab.stopForwarder();
    assert.ok(s, lab.fwdStderr());
    assert.ok(s.aToB.frames > 0 && s.bToA.frames > 0);
    // With veth offloads on, a bulk TCP sender hands over large GSO segments with partial checksums.
    assert.ok(s.aToB.gsoFrames + s.bToA.gsoFrames > 0, `no GSO frames seen: ${JSON.stringify(s)}`);
    assert.ok(s.aToB.maxFrame > 1600 || s.bToA.maxFrame > 1600);
    assert.equal(s.a.rxDropped + s.b.rxDropped >= 0, true);
    assert.equal(await lab.csumErrors('a'), before.a);
    assert.equal(await lab.csumErrors('b'), before.b);
  });
});

test('afpacket l2fwd: checksum completion forced on the egress (tx off) leaves TcpInCsumErrors at 0', { skip, timeout: 120_000 }, async () => {
  await withL2fwdLab({ io: 'afpacket', tag: 'afx', txOff: true }, async (lab) => {
    const before = { a: await lab.csumErrors('a'), b: await lab.csumErrors('b') };
    await bothWays(lab, 20 * MB);
    const s = await lab.stopForwarder();
    assert.ok(s);
    // Partial-checksum frames still arrive from A and B; the egress veth must complete them correctly.
    assert.ok(s.aToB.csumPartialFrames + s.bToA.csumPartialFrames > 0, `no partial-checksum frames: ${JSON.stringify(s)}`);
    assert.equal((await lab.csumErrors('a')) - before.a, 0, 'TcpInCsumErrors on A');
    assert.equal((await lab.csumErrors('b')) - before.b, 0, 'TcpInCsumErrors on B');
  });
});

test('afpacket l2fwd with 2 KB ring slots: GSO frames still cross whole, read from the socket queue', { skip, timeout: 120_000 }, async () => {
  await withL2fwdLab({ io: 'afpacket', tag: 'afs', extraArgs: ['--frame-size', '2048'] }, async (lab) => {
    await bothWays(lab, 8 * MB);
    const s = await lab.stopForwarder();
    assert.ok(s, lab.fwdStderr());
    assert.ok(s.aToB.gsoFrames + s.bToA.gsoFrames > 0, `no GSO frames seen: ${JSON.stringify(s)}`);
    assert.ok(s.aToB.maxFrame > 2048 || s.bToA.maxFrame > 2048, 'frames larger than a slot were delivered');
    const copied = (s.a as { rxCopied?: number }).rxCopied! + (s.b as { rxCopied?: number }).rxCopied!;
    const truncated = (s.a as { rxTruncated?: number }).rxTruncated! + (s.b as { rxTruncated?: number }).rxTruncated!;
    assert.ok(copied > 0, `rxCopied ${copied}`);
    assert.equal(truncated, 0, 'no frame cut short');
  });
});

test('afpacket open errors are typed: ENODEV missing, ENETDOWN down, EINVAL bad name, EPERM without CAP_NET_RAW', { skip, timeout: 60_000 }, async () => {
  await withNetns('afe', async (n) => {
    await n.add('x');
    await n.add('y');
    await n.veth('x', 'xd', 'y', 'yd');
    await n.ip('x', 'link', 'set', 'xd', 'down');
    // The check runs in a child inside the namespace: this process stays in the root namespace.
    const script = `
      import { AfPacketPort } from '${new URL('../../src/io/afpacket.ts', import.meta.url).pathname}';
      const out = {};
      for (const name of ['nosuch0', 'xd', 'lo', 'this-name-is-far-too-long']) {
        try { const p = new AfPacketPort(name); out[name] = { ok: true, mtu: p.mtu, mac: [...p.mac], maxFrame: p.maxFrame }; p.close(); }
        catch (e) { out[name] = { code: e.code, name: e.name, message: e.message }; }
      }
      console.log(JSON.stringify(out));`;
    const r = await n.exec('x', [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, { ok?: boolean; code?: string; name?: string; mtu?: number; maxFrame?: number }>;
    assert.equal(out.nosuch0.code, 'ENODEV');
    assert.equal(out.nosuch0.name, 'IoError');
    assert.equal(out.xd.code, 'ENETDOWN');
    assert.equal(out['this-name-is-far-too-long'].code, 'EINVAL');
    assert.equal(out.lo.ok, true, JSON.stringify(out.lo));
    assert.equal(out.lo.mtu, 65536);
    assert.ok(out.lo.maxFrame! >= 65536);

    // Without CAP_NET_RAW (dropped from the bounding set, so root's exec does not regain it): EPERM.
    const noRaw = await n.exec('x', ['setpriv', '--bounding-set=-net_raw', process.execPath, '--import', 'tsx', '--input-type=module', '-e', script]);
    if (noRaw.code === 0) {
      const o = JSON.parse(noRaw.stdout.trim().split('\n').pop()!) as Record<string, { code?: string }>;
      assert.equal(o.lo.code, 'EPERM', JSON.stringify(o.lo));
      assert.equal(o.nosuch0.code, 'ENODEV', 'the interface check needs no privilege and comes first');
    } else {
      assert.match(noRaw.stderr, /setpriv|not found|ENOENT/, noRaw.stderr); // no setpriv on this machine
    }
  });
});

test('afpacket kernelDrop: the port sees every frame, the kernel stack none; closing the port gives the interface back', { skip, timeout: 60_000 }, async () => {
  await withNetns('afk', async (n) => {
    await n.add('x');
    await n.add('y');
    await n.veth('x', 'xk', 'y', 'yk');
    await n.ip('x', 'addr', 'add', '198.18.77.1/24', 'dev', 'xk');
    await n.ip('y', 'addr', 'add', '198.18.77.2/24', 'dev', 'yk');
    const ping = () => n.exec('x', ['ping', '-n', '-q', '-c', '3', '-i', '0.2', '-W', '1', '198.18.77.2'], 15_000);
    assert.equal((await ping()).code, 0, 'the kernel answers before any port is open');

    const dir = mkdtempSync(join(tmpdir(), 'tsvs-afk-'));
    try {
      // In y: a port with kernelDrop counts ICMP echo requests until the stop file appears.
      const script = `
        import { existsSync, writeFileSync } from 'node:fs';
        import { AfPacketPort } from '${new URL('../../src/io/afpacket.ts', import.meta.url).pathname}';
        const port = new AfPacketPort('yk', { kernelDrop: ${'$'}{DROP} });
        const buf = new Uint8Array(1 << 20), offs = new Uint32Array(64), lens = new Uint32Array(64);
        for (let i = 0; i < 64; i++) offs[i] = i * 16384;
        let echo = 0;
        writeFileSync('${dir}/ready-${'$'}{DROP}', '');
        const until = Date.now() + 20000;
        while (!existsSync('${dir}/stop-${'$'}{DROP}') && Date.now() < until) {
          const got = port.rxBurst(buf, offs, lens, 64);
          for (let i = 0; i < got; i++) {
            const f = offs[i] + 10; // after the vnet header
            if (buf[f + 12] === 0x08 && buf[f + 13] === 0x00 && buf[f + 23] === 1 && buf[f + 34] === 8) echo++;
          }
          if (got === 0) port.wait(20);
        }
        console.log(JSON.stringify({ kernelDrop: port.kernelDrop, error: port.kernelDropError, echo }));
        port.close();`;
      const run = async (drop: boolean) => {
        const child = n.exec('y', [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script.replaceAll('${DROP}', String(drop))], 40_000);
        await waitFor('port open', () => existsSync(`${dir}/ready-${drop}`), 20_000);
        const p = await ping();
        writeFileSync(`${dir}/stop-${drop}`, '');
        const r = await child;
        assert.equal(r.code, 0, r.stderr);
        return { ping: p.code, ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as { kernelDrop: boolean; error: string | null; echo: number }) };
      };
      const dropped = await run(true);
      assert.deepEqual({ kernelDrop: dropped.kernelDrop, error: dropped.error }, { kernelDrop: true, error: null });
      assert.notEqual(dropped.ping, 0, 'the kernel must not answer while the port drops for it');
      assert.ok(dropped.echo >= 3, `the port saw ${dropped.echo} echo requests`);
      assert.equal((await ping()).code, 0, 'closing the port detaches the program');
      const passed = await run(false);
      assert.equal(passed.kernelDrop, false);
      assert.equal(passed.ping, 0, 'kernelDrop off: the kernel answers as before');
      assert.ok(passed.echo >= 3);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

test('IoError is exported with the code union', () => {
  const e = new IoError('ENODEV', 'x', 19);
  assert.equal(e.code, 'ENODEV');
  assert.equal(e.errno, 19);
  assert.ok(typeof AfPacketPort === 'function');
});

test('afpacket multicast: a director\'s local protocol joins its groups\' MACs on the NIC (dev_mcast), and leaves them', { skip, timeout: 60_000 }, async (t) => {
  await withNetns('afm', async (n) => {
    await n.add('x');
    await n.add('y');
    await n.veth('x', 'xm', 'y', 'ym');
    // In a child inside the namespace: the sync group 224.0.0.81 and VRRP's 224.0.0.18 on one port, then
    // removed; an XDP port (generic mode) joins through its own membership socket when it opens here.
    const script = `
      import { readFileSync } from 'node:fs';
      import { AfPacketPort } from '${new URL('../../src/io/afpacket.ts', import.meta.url).pathname}';
      import { XdpPort } from '${new URL('../../src/io/xdp.ts', import.meta.url).pathname}';
      import { Director } from '${new URL('../../src/dp/director.ts', import.meta.url).pathname}';
      const list = (dev) => readFileSync('/proc/net/dev_mcast', 'utf8').split('\\n').map((l) => l.trim().split(/\\s+/)).filter((f) => f[1] === dev).map((f) => f[4]);
      const out = {};
      const port = new AfPacketPort('xm');
      const d = new Director([port]);
      const lp = { proto: 17, udpPort: 8848, port: 0, groups: [0xe0000051, 0xe0000012], deliver: () => {} };
      out.before = list('xm');
      d.addLocalProtocol(lp);
      out.joined = list('xm');
      d.removeLocalProtocol(lp);
      out.left = list('xm');
      d.addLocalProtocol(lp);
      port.close();
      out.closed = list('xm');
      try {
        const x = new XdpPort('xm', { mode: 'skb' });
        const dx = new Director([x]);
        dx.addLocalProtocol(lp);
        out.xdpJoined = list('xm');
        dx.removeLocalProtocol(lp);
        out.xdpLeft = list('xm');
        x.close();
      } catch (e) { out.xdpError = e.message; }
      console.log(JSON.stringify(out));`;
    const r = await n.exec('x', [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, string[] | string>;
    const SYNC = '01005e000051';
    const VRRP = '01005e000012';
    assert.ok(!out.before!.includes(SYNC) && !out.before!.includes(VRRP), JSON.stringify(out));
    assert.ok(out.joined!.includes(SYNC) && out.joined!.includes(VRRP), `while joined: ${JSON.stringify(out.joined)}`);
    assert.ok(!out.left!.includes(SYNC) && !out.left!.includes(VRRP), `after removal: ${JSON.stringify(out.left)}`);
    assert.ok(!out.closed!.includes(SYNC), 'closing the port leaves what it still held');
    if (out.xdpError !== undefined) t.diagnostic(`XDP not checked: ${out.xdpError}`);
    else {
      assert.ok(out.xdpJoined!.includes(SYNC) && out.xdpJoined!.includes(VRRP), `xdp: ${JSON.stringify(out.xdpJoined)}`);
      assert.ok(!out.xdpLeft!.includes(SYNC), `xdp after removal: ${JSON.stringify(out.xdpLeft)}`);
    }
  });
});
