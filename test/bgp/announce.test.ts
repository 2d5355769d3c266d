// Route announcement: which VIPs a director announces, the bird.conf it generates (checked by BIRD's own parser), and the control-socket client against a real BIRD.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bgpSchema, validateConfig } from '../../src/ctl/config.ts';
import { birdConfig, VIP_PROTOCOL } from '../../src/bgp/bird-conf.ts';
import { decideVips } from '../../src/bgp/announcer.ts';
import { BirdError, birdCommand, parseBfdSessions, parseProtocolDetail, parseProtocols } from '../../src/bgp/birdc.ts';
import { waitFor } from '../../src/lab/netns.ts';

const bird = spawnSync('sh', ['-c', 'command -v bird'], { encoding: 'utf8' }).stdout.trim();
const noBird = !bird && 'needs BIRD 2 (apt-get install bird2)';

const BGP = bgpSchema.parse({ local_as: 65001, source: '198.18.3.2', next_hop: '198.18.1.2', neighbors: [{ address: '198.18.3.1', as: 65000 }] });

test('decideVips: announced with quorum; withheld when drained or when any service of the VIP lost quorum', () => {
  const services = [
    { addr: '198.18.1.100', name: 'TCP 198.18.1.100:80' },
    { addr: '198.18.1.100', name: 'TCP 198.18.1.100:443' },
    { addr: '198.18.1.101', name: 'TCP 198.18.1.101:80' },
  ];
  const vips = ['198.18.1.100', '198.18.1.101'];
  assert.deepEqual(decideVips(vips, services, new Map(), false).map((v) => v.announced), [true, true], 'unchecked services always have quorum');
  const q = new Map([['TCP 198.18.1.100:443', false], ['TCP 198.18.1.101:80', true]]);
  assert.deepEqual(decideVips(vips, services, q, false), [
    { prefix: '198.18.1.100/32', announced: false, reason: 'no quorum: TCP 198.18.1.100:443' },
    { prefix: '198.18.1.101/32', announced: true, reason: 'quorum' },
  ]);
  assert.deepEqual(decideVips(vips, services, new Map(), true).map((v) => v.reason), ['drained', 'drained']);
  assert.deepEqual(decideVips(vips, services, new Map(), false, false).map((v) => [v.announced, v.reason]), [[false, 'data plane not answering'], [false, 'data plane not answering']]);
});

test('bgp config: defaults, and bad values refused with the field', () => {
  assert.equal(BGP.hold_time, 3);
  assert.deepEqual(BGP.bfd, { interval_ms: 100, multiplier: 3 });
  assert.throws(() => validateConfig({ bgp: { ...BGP, next_hop: 'x' } }), /bgp\.next_hop/);
  assert.throws(() => validateConfig({ bgp: { ...BGP, neighbors: [] } }), /bgp\.neighbors/);
  assert.throws(() => validateConfig({ bgp: { ...BGP, hold_time: 1 } }), /bgp\.hold_time/);
});

test('birdConfig: VIPs as blackhole statics with the owned next hop kept; BFD; no graceful restart', () => {
  const c = birdConfig(BGP, ['198.18.1.100', '198.18.1.101']);
  assert.match(c, /route 198\.18\.1\.100\/32 blackhole;\n {2}route 198\.18\.1\.101\/32 blackhole;/);
  assert.match(c, /bgp_next_hop = 198\.18\.1\.2;/);
  assert.match(c, /next hop keep;/);
  assert.match(c, /graceful restart off;/);
  assert.match(c, /bfd on;/);
  assert.match(c, /min rx interval 100 ms;/);
  assert.doesNotMatch(birdConfig({ ...BGP, bfd: false }, []), /bfd/);
  assert.doesNotMatch(birdConfig(BGP, []), /route /);
});

test('birdConfig is accepted by BIRD\'s own parser (bird -p)', { skip: noBird }, () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-bird-'));
  try {
    for (const [i, c] of [birdConfig(BGP, ['198.18.1.100']), birdConfig({ ...BGP, bfd: false, hold_time: 9 }, []), birdConfig({ ...BGP, neighbors: [...BGP.neighbors, { address: '198.18.3.9', as: 65009 }] }, ['198.18.1.100', '198.18.1.101'])].entries()) {
      const f = join(dir, `b${i}.conf`);
      writeFileSync(f, c);
      const r = spawnSync(bird, ['-p', '-c', f], { encoding: 'utf8' });
      assert.equal(r.status, 0, `bird -p refused:\n${r.stderr}\n${c}`);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('birdCommand against a running BIRD: show protocols, show route, an error reply', { skip: noBird, timeout: 20_000 }, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-bird-'));
  const conf = join(dir, 'b.conf');
  const ctl = join(dir, 'b.ctl');
  // Only a static protocol (no device, kernel or BGP): this BIRD neither reads nor changes the network.
  writeFileSync(conf, `router id 198.18.3.2;\nprotocol static ${VIP_PROTOCOL} { ipv4; route 198.18.1.100/32 blackhole; }\n`);
  const child = spawn(bird, ['-f', '-c', conf, '-s', ctl], { stdio: 'ignore' });
  try {
    await waitFor('BIRD control socket', () => birdCommand(ctl, 'show status', 500).then(() => true, () => false), 10_000, 50);
    const protos = parseProtocols(await birdCommand(ctl, 'show protocols'));
    assert.deepEqual(protos.map((p) => [p.name, p.proto, p.state]), [[VIP_PROTOCOL, 'Static', 'up']]);
    const routes = (await birdCommand(ctl, 'show route')).map((l) => l.text).join('\n');
    assert.match(routes, /198\.18\.1\.100\/32\s+blackhole/);
    await assert.rejects(birdCommand(ctl, 'show nonsense'), (e: unknown) => e instanceof BirdError && e.code >= 8000);
    // configure with a changed file: the reply is "Reconfigured".
    writeFileSync(conf, `router id 198.18.3.2;\nprotocol static ${VIP_PROTOCOL} { ipv4; }\n`);
    assert.ok((await birdCommand(ctl, 'configure')).some((l) => /Reconfigured/.test(l.text)));
    assert.doesNotMatch((await birdCommand(ctl, 'show route')).map((l) => l.text).join('\n'), /198\.18\.1\.100/);
  } finally {
    child.kill('SIGTERM');
    await new Promise((r) => child.once('exit', r));
    rmSync(dir, { recursive: true, force: true });
  }
});

test('parsers of show protocols all and show bfd sessions', () => {
  const detail = parseProtocolDetail(
    ['uplink1    BGP        ---        up     12:50:33.134  Established', '  BGP state:          Established', '    Neighbor address: 198.18.3.1', '  Channel ipv4', '    Routes:         0 imported, 1 exported, 0 preferred'].map((text) => ({ code: 1006, text })),
  );
  assert.deepEqual(detail, { neighbor: '198.18.3.1', bgpState: 'Established', exported: 1 });
  const bfd = parseBfdSessions(['tsvs_bfd:', 'IP address                Interface  State      Since         Interval  Timeout', '198.18.3.1                mgmt0      Up         12:45:53.778    0.100    0.300'].map((text) => ({ code: 1020, text })));
  assert.deepEqual([...bfd], [['198.18.3.1', 'Up']]);
});
