// macvtap ports end to end: the L2 forwarder owns fa/fb through passthru macvtaps and carries ping and TCP
// both ways, offloads at defaults and with checksum completion forced on its egress; set-up and errors.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canUseNetns, withNetns } from '../../src/lab/netns.ts';
import { withL2fwdLab, type L2fwdLab } from '../../src/lab/l2fwd-lab.ts';
import { bothWays } from './l2fwd-checks.ts';

const skip = !canUseNetns() && 'needs root (network namespaces, macvtap)';
const MB = 1 << 20;

async function macvtapsIn(lab: L2fwdLab): Promise<string> {
  return lab.n.ip('f', '-o', 'link', 'show', 'type', 'macvtap');
}

test('macvtap l2fwd: ping and TCP A<->B, default offloads; created macvtaps are removed on close', { skip, timeout: 120_000 }, async () => {
  await withL2fwdLab({ io: 'macvtap', tag: 'mvd' }, async (lab) => {
    // The forwarder was given the veths: it stacked a passthru macvtap on each.
    const links = await macvtapsIn(lab);
    assert.equal(links.trim().split('\n').length, 2, links);
    assert.match(links, /@fa/);
    assert.match(links, /@fb/);
    const before = { a: await lab.csumErrors('a'), b: await lab.csumErrors('b') };
    await bothWays(lab, 20 * MB);
    const s = await lab.stopForwarder();
    assert.ok(s, lab.fwdStderr());
    assert.ok(s.aToB.frames > 0 && s.bToA.frames > 0);
    // The vnet header and TSO offloads let TCP cross as large GSO segments with partial checksums.
    assert.ok(s.aToB.gsoFrames + s.bToA.gsoFrames > 0, `no GSO frames: ${JSON.stringify(s)}`);
    assert.ok(Math.max(s.aToB.maxFrame, s.bToA.maxFrame) > 1600);
    assert.ok(s.aToB.csumPartialFrames + s.bToA.csumPartialFrames > 0);
    assert.equal(s.a.txErrors + s.b.txErrors, 0, JSON.stringify(s));
    assert.equal(await lab.csumErrors('a'), before.a);
    assert.equal(await lab.csumErrors('b'), before.b);
    assert.equal((await macvtapsIn(lab)).trim(), '', 'macvtaps left behind after close');
  });
});

test('macvtap l2fwd: checksum completion forced on the egress (tx off) leaves TcpInCsumErrors at 0', { skip, timeout: 120_000 }, async () => {
  // Pre-made macvtaps named by the caller: the port opens them as they are and leaves them in place.
  const prepareF = async (n: Parameters<NonNullable<Parameters<typeof withL2fwdLab>[0]['prepareF']>>[0]) => {
    for (const [mv, low] of [['mva', 'fa'], ['mvb', 'fb']]) {
      await n.ip('f', 'link', 'add', 'link', low!, 'name', mv!, 'type', 'macvtap', 'mode', 'passthru');
    }
    return { a: 'mva', b: 'mvb' };
  };
  await withL2fwdLab({ io: 'macvtap', tag: 'mvx', txOff: true, prepareF }, async (lab) => {
    const before = { a: await lab.csumErrors('a'), b: await lab.csumErrors('b') };
    await bothWays(lab, 20 * MB);
    const s = await lab.stopForwarder();
    assert.ok(s, lab.fwdStderr());
    assert.ok(s.aToB.csumPartialFrames + s.bToA.csumPartialFrames > 0, `no partial-checksum frames: ${JSON.stringify(s)}`);
    assert.equal((await lab.csumErrors('a')) - before.a, 0, 'TcpInCsumErrors on A');
    assert.equal((await lab.csumErrors('b')) - before.b, 0, 'TcpInCsumErrors on B');
    assert.match(await macvtapsIn(lab), /mva@fa/, 'a macvtap the port did not create must stay');
  });
});

test('macvtap open: typed errors, MAC of the lower interface, existing macvtap reused', { skip, timeout: 60_000 }, async () => {
  await withNetns('mve', async (n) => {
    await n.add('x');
    await n.add('y');
    await n.veth('x', 'xd', 'y', 'yd');
    await n.veth('x', 'xe', 'y', 'ye');
    await n.ip('x', 'link', 'set', 'xe', 'down');
    await n.ip('x', 'link', 'add', 'xbr', 'type', 'bridge');
    await n.ip('x', 'link', 'set', 'xd', 'master', 'xbr');
    await n.ip('x', 'link', 'add', 'name', 'xf', 'type', 'veth', 'peer', 'name', 'xg');
    await n.ip('x', 'link', 'set', 'xf', 'up');
    const mod = new URL('../../src/io/macvtap.ts', import.meta.url).pathname;
    const script = `
      import { MacvtapPort } from '${mod}';
      import { execFileSync } from 'node:child_process';
      const out = {};
      for (const name of ['nosuch0', 'xe', 'xd', 'this-name-is-far-too-long', 'xf']) {
        try {
          const p = MacvtapPort.open(name);
          const lower = execFileSync('cat', ['/sys/class/net/' + name + '/address'], { encoding: 'utf8' }).trim();
          const again = MacvtapPort.open(name);
          out[name] = { ok: true, mac: [...p.mac].map((b) => b.toString(16).padStart(2, '0')).join(':'), lower,
            mtu: p.mtu, maxFrame: p.maxFrame, macvtap: p.macvtap, created: p.created, againCreated: again.created, again: again.macvtap };
          again.close();
          p.close();
          out[name].after = execFileSync('ip', ['-o', 'link', 'show', 'type', 'macvtap'], { encoding: 'utf8' }).trim();
        } catch (e) { out[name] = { code: e.code, name: e.name, message: e.message }; }
      }
      console.log(JSON.stringify(out));`;
    const r = await n.exec('x', [process.execPath, '--import', 'tsx', '--input-type=module', '-e', script]);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, Record<string, unknown>>;
    assert.equal(out.nosuch0!.code, 'ENODEV');
    assert.equal(out.nosuch0!.name, 'IoError');
    assert.equal(out.xe!.code, 'ENETDOWN');
    assert.equal(out.xd!.code, 'ESETUP', 'a bridge port refuses a macvtap');
    assert.match(String(out.xd!.message), /busy/i);
    assert.equal(out['this-name-is-far-too-long']!.code, 'EINVAL');
    const ok = out.xf!;
    assert.equal(ok.ok, true, JSON.stringify(ok));
    assert.equal(ok.mac, ok.lower, 'passthru macvtap carries the lower MAC');
    assert.equal(ok.mtu, 1500);
    assert.ok((ok.maxFrame as number) >= 65535);
    assert.equal(ok.created, true);
    assert.equal(ok.againCreated, false);
    assert.equal(ok.again, ok.macvtap);
    assert.equal(ok.after, '', 'the created macvtap is deleted on close');
  });
});
