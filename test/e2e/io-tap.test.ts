// TAP ports end to end: per side a bridge in F holds the veth and a persistent TAP the L2 forwarder opens;
// ping and TCP cross both ways, offloads at defaults and with checksum completion forced on the egress.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNetns, withNetns, type Netns } from '../../src/lab/netns.ts';
import { withL2fwdLab } from '../../src/lab/l2fwd-lab.ts';
import { bothWays } from './l2fwd-checks.ts';

const skip = !canUseNetns() && 'needs root (network namespaces, TUN/TAP)';
const MB = 1 << 20;

/** bra = {fa, ta}, brb = {fb, tb}; the TAPs are persistent so they exist before the forwarder opens them. */
async function bridgedTaps(n: Netns): Promise<{ a: string; b: string }> {
  for (const [br, veth, tap] of [['bra', 'fa', 'ta'], ['brb', 'fb', 'tb']] as const) {
    await n.ip('f', 'link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0');
    await n.ip('f', 'tuntap', 'add', tap, 'mode', 'tap');
    await n.ip('f', 'link', 'set', veth, 'master', br);
    await n.ip('f', 'link', 'set', tap, 'master', br);
    await n.ip('f', 'link', 'set', br, 'up');
  }
  return { a: 'ta', b: 'tb' };
}

test('tap l2fwd (bridged TAPs): ping and TCP A<->B with default offloads, GSO frames cross whole', { skip, timeout: 120_000 }, async () => {
  await withL2fwdLab({ io: 'tap', tag: 'tpd', prepareF: bridgedTaps }, async (lab) => {
    const before = { a: await lab.csumErrors('a'), b: await lab.csumErrors('b') };
    await bothWays(lab, 20 * MB);
    const s = await lab.stopForwarder();
    assert.ok(s, lab.fwdStderr());
    assert.ok(s.aToB.frames > 0 && s.bToA.frames > 0);
    assert.ok(s.aToB.gsoFrames + s.bToA.gsoFrames > 0, `no GSO frames: ${JSON.stringify(s)}`);
    assert.ok(Math.max(s.aToB.maxFrame, s.bToA.maxFrame) > 1600);
    assert.equal(s.a.txErrors + s.b.txErrors, 0, JSON.stringify(s));
    assert.equal(await lab.csumErrors('a'), before.a);
    assert.equal(await lab.csumErrors('b'), before.b);
  });
});

test('tap l2fwd (port-built bridges): checksum completion forced on the egress (tx off) leaves TcpInCsumErrors at 0', { skip, timeout: 120_000 }, async () => {
  // No prepareF: the forwarder is given fa/fb and each TapPort builds its own bridge + TAP around them.
  await withL2fwdLab({ io: 'tap', tag: 'tpx', txOff: true }, async (lab) => {
    assert.equal((await lab.n.ip('f', '-o', 'link', 'show', 'type', 'bridge')).trim().split('\n').length, 2);
    const before = { a: await lab.csumErrors('a'), b: await lab.csumErrors('b') };
    await bothWays(lab, 20 * MB);
    const s = await lab.stopForwarder();
    assert.ok(s, lab.fwdStderr());
    assert.ok(s.aToB.csumPartialFrames + s.bToA.csumPartialFrames > 0, `no partial-checksum frames: ${JSON.stringify(s)}`);
    assert.equal((await lab.csumErrors('a')) - before.a, 0, 'TcpInCsumErrors on A');
    assert.equal((await lab.csumErrors('b')) - before.b, 0, 'TcpInCsumErrors on B');
    assert.equal((await lab.n.ip('f', '-o', 'link', 'show', 'type', 'bridge')).trim(), '', 'bridges left after close');
    assert.match(await lab.n.ip('f', '-o', 'link', 'show', 'fa'), /,UP/);
  });
});

test('tap open: header size and offloads reset on a persistent TAP, created TAP goes away, typed errors', { skip, timeout: 60_000 }, async () => {
  await withNetns('tpe', async (n) => {
    await n.add('x');
    await n.add('y');
    await n.veth('x', 'xd', 'y', 'yd');
    await n.veth('x', 'xe', 'y', 'ye');
    await n.veth('x', 'xf', 'y', 'yf');
    await n.ip('x', 'link', 'set', 'xe', 'down');
    await n.ip('x', 'tuntap', 'add', 'tp0', 'mode', 'tap', 'vnet_hdr');
    await n.ip('x', 'link', 'add', 'xbr', 'type', 'bridge');
    await n.ip('x', 'link', 'set', 'xf', 'master', 'xbr');
    const mod = new URL('../../src/io/tap.ts', import.meta.url).pathname;
    const script = `
      import { TapPort, DEFAULT_OFFLOADS } from '${mod}';
      import { execFileSync } from 'node:child_process';
      const sh = (c) => execFileSync('sh', ['-c', c], { encoding: 'utf8' }).trim();
      const out = {};
      // A persistent TAP: first owner turns offloads on, the second asks for none and must get none.
      const p1 = TapPort.open('tp0');
      out.tso1 = sh("ethtool -k tp0 | grep '^tcp-segmentation-offload'");
      p1.close();
      const p2 = TapPort.open('tp0', { offloads: false });
      out.tso2 = sh("ethtool -k tp0 | grep '^tcp-segmentation-offload'");
      out.maxFrame2 = p2.maxFrame;
      p2.close();
      // A created TAP, enslaved to a bridge, up, with a MAC that is not the bridge port's own.
      const p3 = TapPort.open('tp9', { bridge: 'xbr' });
      out.created = sh('ip -o link show tp9');
      out.mac3 = [...p3.mac].map((b) => b.toString(16).padStart(2, '0')).join(':');
      out.kmac3 = sh('cat /sys/class/net/tp9/address');
      out.maxFrame3 = p3.maxFrame;
      out.mtu3 = p3.mtu;
      p3.close();
      out.gone = sh('ip -o link show tp9 2>&1 || true');
      // The owned veth xd: the port bridges it with a TAP of its own and undoes that on close.
      const p4 = TapPort.open('xd');
      out.tap4 = p4.tap;
      out.bridge4 = p4.bridge;
      out.ports4 = sh('ip -o link show master ' + p4.bridge + " | awk '{print $2}'");
      out.ifname4 = p4.ifname;
      p4.close();
      out.after4 = sh('ip -o link show type bridge; ip -o link show xd');
      for (const [name, o] of [['xe', {}], ['xf', {}], ['this-name-is-far-too-long', {}], ['tp1', { offloads: 2 }]]) {
        try { TapPort.open(name, o).close(); out[name] = { ok: true }; }
        catch (e) { out[name] = { code: e.code, name: e.name, message: e.message }; }
      }
      console.log(JSON.stringify(out));`;
    const r = await n.exec('x', [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, unknown> & Record<string, Record<string, unknown>>;
    assert.match(String(out.tso1), /: on/);
    assert.match(String(out.tso2), /: off/);
    assert.equal(out.maxFrame2, 10 + 18 + 1500);
    assert.match(String(out.created), /master xbr/);
    assert.match(String(out.created), /,UP/);
    assert.notEqual(out.mac3, out.kmac3);
    assert.equal(out.maxFrame3, 10 + 18 + 65535);
    assert.equal(out.mtu3, 1500);
    assert.match(String(out.gone), /does not exist/);
    assert.match(String(out.tap4), /^tap\d+$/);
    assert.match(String(out.bridge4), /^tbr\d+$/);
    assert.equal(out.ifname4, 'xd');
    assert.deepEqual(String(out.ports4).split('\n').map((s) => s.replace(/[:@].*/, '')).sort(), ['tap' + String(out.tap4).slice(3), 'xd'].sort());
    assert.doesNotMatch(String(out.after4), /tbr|master/);
    assert.equal(out.xe!.code, 'ENETDOWN');
    assert.equal(out.xe!.name, 'IoError');
    assert.equal(out.xf!.code, 'ESETUP', 'already a bridge port');
    assert.equal(out['this-name-is-far-too-long']!.code, 'EINVAL');
    assert.equal(out.tp1!.code, 'EINVAL', 'TSO without CSUM');
  });
});
