// tsvs trace and pcap: one NAT and one DR connection followed through the hooks; captures read back by tshark.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { existsSync } from 'node:fs';
import { canUseNetns, run } from '../../src/lab/netns.ts';
import { withDirectorLab, VIP } from './director-harness.ts';
import { runTrace } from '../../src/cli/trace.ts';
import type { TracePacket } from '../../src/dp/trace.ts';

const hasTshark = existsSync('/usr/bin/tshark');

/** Starts a trace, makes one HTTP request from the client, and returns the traced packets. */
async function traceOne(d: Parameters<Parameters<typeof withDirectorLab>[1]>[0], count: number, pcap?: string): Promise<TracePacket[]> {
  const lines: string[] = [];
  const tracing = runTrace({ socket: d.lab.director.socket, cip: '198.18.0.2', port: 80, count, pcap, timeoutMs: 20_000 }, (s) => lines.push(s));
  // Give the trace request time to reach the data plane before the connection starts.
  await new Promise((r) => setTimeout(r, 300));
  const r = await d.client('http', 80, 1);
  assert.equal(r.failed, 0, r.errors.join('; '));
  const packets = await tracing;
  assert.equal(lines.length, packets.length);
  return packets;
}

test('trace: a NAT connection, request and reply, step by step; pcap from trace and from tsvsd', { skip: !canUseNetns() && 'needs root', timeout: 120_000 }, async () => {
  await withDirectorLab('nat', async (d) => {
    await d.restore(`-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${d.lab.realServers[0]!.ip}:80 -m\n`);
    const pcap = join(d.lab.state.dir, 'trace.pcap');
    const packets = await traceOne(d, 4, pcap);
    assert.equal(packets.length, 4);
    const syn = packets[0]!;
    assert.deepEqual(syn.steps.map((s) => s.hook), ['PREROUTING', 'INPUT', 'POSTROUTING']);
    assert.equal(syn.steps[0]!.daddr, VIP);
    assert.equal(syn.steps[0]!.tcpFlags, 'S');
    assert.equal(syn.steps[1]!.verdict, 'IPVS');
    assert.equal(syn.steps[1]!.daddr, '198.18.2.11', 'INPUT rewrote VIP → RIP');
    assert.equal(syn.steps[2]!.ifname, 'nat0');
    const synack = packets.find((p) => p.steps[0]!.tcpFlags === 'S.')!;
    assert.ok(synack, 'the reply was traced');
    assert.deepEqual(synack.steps.map((s) => s.hook), ['PREROUTING', 'FORWARD', 'POSTROUTING']);
    assert.equal(synack.steps[0]!.saddr, '198.18.2.11');
    assert.equal(synack.steps[1]!.saddr, VIP, 'FORWARD rewrote RIP → VIP');
    assert.equal(synack.steps[2]!.verdict, 'SENT');
    assert.equal(synack.steps[2]!.dstMac, '02:00:c6:12:01:01', 'to the router');
    if (hasTshark) {
      const t = await run('tshark', ['-r', pcap, '-T', 'fields', '-e', 'ip.src', '-e', 'ip.dst', '-e', 'tcp.flags.str']);
      assert.equal(t.code, 0, t.stderr);
      assert.match(t.stdout, /198\.18\.0\.2\t198\.18\.1\.100/);
      assert.match(t.stdout, /198\.18\.0\.2\t198\.18\.2\.11/);
      assert.match(t.stdout, /198\.18\.1\.100\t198\.18\.0\.2/);
    }
  }, 1, ['--pcap', '/tmp/tsvs-e2e-director.pcap']);
  if (hasTshark) {
    const t = await run('tshark', ['-r', '/tmp/tsvs-e2e-director.pcap', '-Y', 'arp || tcp', '-T', 'fields', '-e', 'frame.protocols']);
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /eth:ethertype:arp/, 'the gratuitous ARPs and resolutions were captured');
    assert.match(t.stdout, /eth:ethertype:ip:tcp/);
    await run('rm', ['-f', '/tmp/tsvs-e2e-director.pcap']);
  }
});

test('trace: a DR connection keeps its addresses and changes only MACs', { skip: !canUseNetns() && 'needs root', timeout: 120_000 }, async () => {
  await withDirectorLab('dr', async (d) => {
    const rs = d.lab.realServers[0]!;
    await d.restore(`-A -t ${VIP}:80 -s rr\n-a -t ${VIP}:80 -r ${rs.ip} -g\n`);
    const packets = await traceOne(d, 2);
    const syn = packets[0]!;
    assert.deepEqual(syn.steps.map((s) => s.hook), ['PREROUTING', 'INPUT', 'POSTROUTING']);
    // The first packet may wait for ARP (QUEUED); the next one shows the resolved MACs.
    const sent = packets.find((p) => p.steps.at(-1)!.verdict === 'SENT');
    assert.ok(sent, 'a packet was sent to the real server');
    const out = sent.steps.at(-1)!;
    assert.equal(out.daddr, VIP, 'DR keeps the VIP as destination');
    assert.equal(out.saddr, '198.18.0.2');
    assert.equal(out.dstMac, rs.mac, 'to the real server MAC');
    assert.equal(out.srcMac, '02:00:c6:12:01:02', 'from the director MAC');
    // Replies go straight from the real server to the client: the director never sees them.
    assert.ok(packets.every((p) => p.steps[0]!.saddr === '198.18.0.2'));
  }, 1);
});
