// src/packet's IPv6 against the Linux kernel as the peer: NS/NA, echo, an incrementally NAT-rewritten TCP SYN
// behind extension headers (complete and partial checksums), port unreachable with its embedded datagram, Packet Too Big and an unsolicited NA.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { canUseNetns, withNetns } from '../../src/lab/netns.ts';

const skip = !canUseNetns() && 'needs root (network namespaces, AF_PACKET)';
const PEER = fileURLToPath(new URL('./ipv6-wire-peer.ts', import.meta.url));
const KERNEL = '2001:db8:6::1';
const ME = '2001:db8:6::2';
const NEW_MAC = '02:00:00:00:06:99';

test('IPv6 wire formats against the kernel: ND, echo, rewritten TCP, port unreachable, Packet Too Big, unsolicited NA', { skip, timeout: 90_000 }, async () => {
  await withNetns('v6w', async (n) => {
    await n.add('x');
    await n.add('y');
    await n.veth('x', 'xd', 'y', 'yd');
    // The kernel of y speaks IPv6 on yd; x's kernel stays silent (IPv6 off), the test's port speaks for it.
    await n.sh('y', `sysctl -qw net.ipv6.conf.all.disable_ipv6=0 net.ipv6.conf.yd.disable_ipv6=0 net.ipv6.conf.yd.accept_dad=0 net.ipv6.icmp.ratelimit=0`);
    await n.ip('y', '-6', 'addr', 'add', `${KERNEL}/64`, 'dev', 'yd', 'nodad');
    // Partial checksums leaving xd are completed by x's kernel (skb_checksum_help), so y verifies them.
    await n.sh('x', 'ethtool -K xd tx off >/dev/null');
    const kernelMac = (await n.sh('y', 'cat /sys/class/net/yd/address')).trim();
    const r = await n.exec('x', [process.execPath, '--import', 'tsx', PEER, 'xd', KERNEL, ME, kernelMac, NEW_MAC], 30_000);
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!) as Record<string, Record<string, unknown> | null | number | string>;
    // A: solicited (our NS was multicast), override, not a router; the kernel's MAC; to our address.
    assert.deepEqual(out.na, { verified: true, flags: 0x60, lladdr: kernelMac, to: ME });
    assert.deepEqual(out.echo, { verified: true, from: KERNEL, len: 16 });
    // C: the kernel found the rewritten checksum right: RST|ACK for a SYN to a closed port.
    assert.deepEqual(out.rst, { checked: true, flags: 0x14 });
    assert.equal(out.partialIn, true);
    assert.equal(out.partialWrong, false, 'the complete-checksum formula on a partial seed must not be accepted');
    assert.equal(out.partialRst, true, 'the partial rule: the kernel accepted the completed checksum');
    assert.deepEqual(out.unreach, { code: 4, innerSrc: ME, innerDst: KERNEL, sport: 40124, dport: 9, proto: 17 });
    assert.deepEqual(out.bigEcho, { len: 1408 });
    assert.equal(out.ptbLen, 10 + 14 + 1280);
    const route = await n.ip('y', '-6', 'route', 'get', ME);
    assert.match(route, /mtu 1300/, `route after Packet Too Big: ${route}`);
    const neigh = await n.ip('y', '-6', 'neigh', 'show', ME, 'dev', 'yd');
    assert.match(neigh, new RegExp(`lladdr ${NEW_MAC}`), `neighbour after the unsolicited NA: ${neigh}`);
  });
});
