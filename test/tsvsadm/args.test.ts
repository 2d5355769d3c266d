// ipvsadm 1.31's argument grammar as tsvsadm parses it: commands, options, defaults, and every refusal's text and status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseArgs, toRequest, type ParseOutcome } from '../../src/cli/tsvsadm/args.ts';
import type { Resolver } from '../../src/cli/tsvsadm/resolve.ts';

const resolver: Resolver = {
  async hostToAddr(name) {
    return ({ web1: '10.0.0.5', vip: '198.18.1.100', mask24: '255.255.255.0' } as Record<string, string>)[name] ?? null;
  },
  serviceToPort(name, proto) {
    if (name === 'http' && proto === 'tcp') return 80;
    if (name === 'domain') return 53;
    return null;
  },
};

function parse(line: string, restoring = false): Promise<ParseOutcome> {
  return parseArgs(line === '' ? [] : line.split(' '), { program: 'tsvsadm', resolver, tsvsVersion: '9.9.9', restoring });
}

async function req(line: string) {
  const o = await parse(line);
  assert.equal(o.kind, 'command', JSON.stringify(o));
  return toRequest((o as Extract<ParseOutcome, { kind: 'command' }>).parsed);
}

/** An ipvsadm fail(): message on stderr plus newline, the given status, nothing on stdout. */
async function fails(line: string, message: string, code = 2) {
  const o = await parse(line);
  assert.deepEqual(o, { kind: 'exit', code, stdout: '', stderr: message + '\n' }, line);
}

const TRY = "Try `tsvsadm -h' or 'tsvsadm --help' for more information.";
const DEF_CFG = { scheduler: 'wlc', persistent: false, timeout: 0, netmask: '255.255.255.255', onePacket: false, schedFlags: 0, pe: '' };
const DEF_DEST = { fwd: 'route', weight: 1, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: 'nocsum' };

test('add-service defaults: wlc, not persistent, /32 mask', async () => {
  assert.deepEqual(await req('-A -t 198.18.1.100:80'), {
    op: 'add-service',
    service: { type: 'tcp', addr: '198.18.1.100', port: 80 },
    config: DEF_CFG,
  });
});

test('combined short options, long options with = and with a separate value', async () => {
  const want = { op: 'add-service', service: { type: 'tcp', addr: '198.18.1.100', port: 80 }, config: { ...DEF_CFG, scheduler: 'rr' } };
  assert.deepEqual(await req('-At 198.18.1.100:80 -s rr'), want);
  assert.deepEqual(await req('--add-service --tcp-service=198.18.1.100:80 --scheduler rr'), want);
  assert.deepEqual(await req('-A -t198.18.1.100:80 -srr'), want);
  assert.deepEqual(await req('-A -t=198.18.1.100:80 -s=rr'), want);
});

test('-p alone means 360 s; -p takes a value unless the next word is an option', async () => {
  const cfg = async (l: string) => ((await req(l)) as { config: unknown }).config;
  assert.deepEqual(await cfg('-A -t 198.18.1.100:0 -p'), { ...DEF_CFG, persistent: true, timeout: 360 });
  assert.deepEqual(await cfg('-A -t 198.18.1.100:80 -p -s rr'), { ...DEF_CFG, scheduler: 'rr', persistent: true, timeout: 360 });
  assert.deepEqual(await cfg('-A -t 198.18.1.100:80 -p 100 -M 255.255.255.0'), { ...DEF_CFG, persistent: true, timeout: 100, netmask: '255.255.255.0' });
  assert.deepEqual(await cfg('-A -t 198.18.1.100:80 --persistent=7 -M mask24'), { ...DEF_CFG, persistent: true, timeout: 7, netmask: '255.255.255.0' });
  assert.deepEqual(await cfg('-A -t 198.18.1.100:80 -p5'), { ...DEF_CFG, persistent: true, timeout: 5 });
  await fails('-A -t 198.18.1.100:80 -p 0', "invalid timeout value `0' specified");
  await fails('-A -t 198.18.1.100:80 -p 2678401', "invalid timeout value `2678401' specified");
  await fails('-A -t 198.18.1.100:80 -p foo', "invalid timeout value `foo' specified");
});

test('-E replaces every setting: omitted options go back to their defaults', async () => {
  assert.deepEqual(await req('-E -t 198.18.1.100:80'), { op: 'edit-service', service: { type: 'tcp', addr: '198.18.1.100', port: 80 }, config: DEF_CFG });
});

test('host and service names are resolved in arguments (even with no -n), inet_aton forms accepted', async () => {
  assert.deepEqual(await req('-A -t web1:http'), { op: 'add-service', service: { type: 'tcp', addr: '10.0.0.5', port: 80 }, config: DEF_CFG });
  assert.deepEqual(await req('-A -u vip:domain'), { op: 'add-service', service: { type: 'udp', addr: '198.18.1.100', port: 53 }, config: DEF_CFG });
  assert.deepEqual((await req('-D -t 10.1:80')) as unknown, { op: 'delete-service', service: { type: 'tcp', addr: '10.0.0.1', port: 80 } });
  assert.deepEqual((await req('-D -t 0x0a000001:80')) as unknown, { op: 'delete-service', service: { type: 'tcp', addr: '10.0.0.1', port: 80 } });
  await fails('-A -t nosuchhost:80', 'illegal virtual server address[:port] specified');
  await fails('-A -t 80', 'illegal virtual server address[:port] specified');
  await fails('-A -t 198.18.1.100:nosuchservice', 'illegal virtual server address[:port] specified');
  await fails('-A -t 198.18.1.100:65536', 'illegal virtual server address[:port] specified');
});

test('fwmark services, -6 only after -f, ops only for UDP or fwmark', async () => {
  assert.deepEqual(await req('-A -f 7 -s sh -b sh-port'), { op: 'add-service', service: { type: 'fwmark', fwmark: 7 }, config: { ...DEF_CFG, scheduler: 'sh', schedFlags: 2 } });
  assert.deepEqual(await req('-A -f 7 -6'), { op: 'add-service', service: { type: 'fwmark', fwmark: 7, ipv6: true }, config: { ...DEF_CFG, netmask: '128' } });
  assert.deepEqual(await req('-A -u 198.18.1.100:53 -o'), { op: 'add-service', service: { type: 'udp', addr: '198.18.1.100', port: 53 }, config: { ...DEF_CFG, onePacket: true } });
  await fails('-A -t 198.18.1.100:80 -o', 'One-Packet Scheduling is only for UDP virtual services');
  await fails('-A -t 198.18.1.100:80 -6', '-6 used before -f\n');
  await fails('-A -f 0', "invalid fwmark value `0' specified");
  await fails('-A -f 4294967296', "invalid fwmark value `4294967296' specified");
  await fails('-A -t 198.18.1.100:0', 'Zero port specified for non-persistent service');
});

test('scheduler flags: names per scheduler, checked against -s or the default wlc', async () => {
  const flags = async (l: string) => ((await req(l)) as { config: { schedFlags: number } }).config.schedFlags;
  assert.equal(await flags('-A -t 198.18.1.100:80 -b flag-1,flag-3'), 5);
  assert.equal(await flags('-A -t 198.18.1.100:80 -b mh-fallback,mh-port -s mh'), 3);
  await fails('-A -t 198.18.1.100:80 -b sh-port', "incompatible scheduler flag `sh-port'");
  await fails('-A -t 198.18.1.100:80 -s rr -b bogus', "invalid scheduler flag `bogus'");
});

test('real servers: -g default with weight 1; DR/TUN take the service port; NAT keeps its own', async () => {
  const svc = { type: 'tcp', addr: '198.18.1.100', port: 80 };
  assert.deepEqual(await req('-a -t 198.18.1.100:80 -r 198.18.1.11'), { op: 'add-server', service: svc, dest: { ...DEF_DEST, addr: '198.18.1.11', port: 80 } });
  assert.deepEqual(await req('-a -t 198.18.1.100:80 -r 198.18.1.11:8080 -g'), { op: 'add-server', service: svc, dest: { ...DEF_DEST, addr: '198.18.1.11', port: 80 } });
  assert.deepEqual(await req('-a -t 198.18.1.100:80 -r 198.18.2.11:8080 -m -w 3 -x 100 -y 10'), {
    op: 'add-server',
    service: svc,
    dest: { ...DEF_DEST, addr: '198.18.2.11', port: 8080, fwd: 'masq', weight: 3, uThreshold: 100, lThreshold: 10 },
  });
  assert.deepEqual(await req('-e -t 198.18.1.100:80 -r 198.19.0.11 -i'), { op: 'edit-server', service: svc, dest: { ...DEF_DEST, addr: '198.19.0.11', port: 80, fwd: 'tunnel' } });
  assert.deepEqual(await req('-a -f 5 -r 198.18.1.11'), { op: 'add-server', service: { type: 'fwmark', fwmark: 5 }, dest: { ...DEF_DEST, addr: '198.18.1.11', port: 0 } });
  assert.deepEqual(await req('-d -t 198.18.1.100:80 -r 198.18.2.11:8080'), { op: 'delete-server', service: svc, dest: { addr: '198.18.2.11', port: 8080 } });
  assert.deepEqual(await req('-a -t 198.18.1.100:80 -r 198.18.1.11 -i --tun-type gue --tun-port 6080 --tun-csum'), {
    op: 'add-server',
    service: svc,
    dest: { ...DEF_DEST, addr: '198.18.1.11', port: 80, fwd: 'tunnel', tunType: 'gue', tunPort: 6080, tunCsum: 'csum' },
  });
  await fails('-a -t 198.18.1.100:80 -r 198.18.1.11 -w 65536', 'illegal weight specified');
  await fails('-a -t 198.18.1.100:80 -r 198.18.1.11 -x -1', 'illegal u_threshold specified');
  await fails('-a -t 198.18.1.100:80 -r 198.18.1.11 -y x', 'illegal l_threshold specified');
  await fails('-a -t 198.18.1.100:80 -r nosuchhost', 'illegal real server address[:port] specified');
  await fails('-a -t 198.18.1.100:80 -r [::1]:80 -m', 'Different address family is allowed only for tunneling servers');
  await fails('-a -t 198.18.1.100:80 -r 198.18.1.11 --tun-type gre', 'Tunnel options conflict with forward method');
  await fails('-a -t 198.18.1.100:80 -r 198.18.1.11 -i --tun-type gue', "You need to supply the 'tun-port' option for the 'gue' tunnel type");
  await fails('-a -t 198.18.1.100:80 -r 198.18.1.11 -i --tun-port 5', "Illegal 'tun-port' option with the 'ipip' tunnel type");
  await fails('-a -t 198.18.1.100:80 -r 198.18.1.11 -i --tun-type gre --tun-csum --tun-nocsum', "The option 'tun-csum' conflicts with the 'tun-nocsum' option in the 'gre' tunnel type");
  await fails('-a -t 198.18.1.100:80 -r 198.18.1.11 -i --tun-type bogus', 'illegal tunnel type specified');
});

test('list, zero, flush, set and daemon commands map onto their requests', async () => {
  assert.deepEqual(await req('-L'), { op: 'list' });
  assert.deepEqual(await req('-l -n'), { op: 'list' });
  assert.deepEqual(await req('-Ln --stats --exact'), { op: 'list' });
  assert.deepEqual(await req('-L -n -t 198.18.1.100:80'), { op: 'list', service: { type: 'tcp', addr: '198.18.1.100', port: 80 } });
  assert.deepEqual(await req('-Lnc'), { op: 'connections' });
  assert.deepEqual(await req('--list --timeout'), { op: 'get-timeout' });
  assert.deepEqual(await req('-L --daemon'), { op: 'get-daemon' });
  assert.deepEqual(await req('-L --sort --nosort --thresholds'), { op: 'list' });
  assert.deepEqual(await req('-S -n'), { op: 'list' });
  assert.deepEqual(await req('-Z'), { op: 'zero' });
  assert.deepEqual(await req('-Z -u 198.18.1.100:53'), { op: 'zero', service: { type: 'udp', addr: '198.18.1.100', port: 53 } });
  assert.deepEqual(await req('-C'), { op: 'flush' });
  assert.deepEqual(await req('--set 900 0 300'), { op: 'set-timeout', timeouts: { tcp: 900, tcpfin: 0, udp: 300 } });
  assert.deepEqual(await req('--start-daemon master'), {
    op: 'start-daemon',
    daemon: { state: 'master', mcastIfn: 'eth0', syncid: 0, syncMaxlen: 0, mcastGroup: '', mcastPort: 0, mcastTtl: 0 },
  });
  assert.deepEqual(await req('--stop-daemon backup --syncid 3'), { op: 'stop-daemon', state: 'backup', syncid: 3 });
  const r = await parse('-R');
  assert.equal(r.kind, 'command');
});

test('the command × option matrix refuses with ipvsadm texts, in option order', async () => {
  await fails('-A', "You need to supply the 'service-address' option for the 'add-service' command");
  await fails('-A -n', "Illegal 'numeric' option with the 'add-service' command");
  await fails('-A -t 198.18.1.100:80 -w 2', "Illegal 'weight' option with the 'add-service' command");
  await fails('-D -t 198.18.1.100:80 -s rr', "Illegal 'scheduler' option with the 'delete-service' command");
  await fails('-a -t 198.18.1.100:80', "You need to supply the 'real-server' option for the 'add-server' command");
  await fails('-a -r 198.18.1.11', "You need to supply the 'service-address' option for the 'add-server' command");
  await fails('-d -t 198.18.1.100:80 -r 198.18.1.11 -w 2', "Illegal 'weight' option with the 'delete-server' command");
  await fails('-C -n', "Illegal 'numeric' option with the 'flush' command");
  await fails('-S -c', "Illegal 'connection' option with the 'save' command");
  await fails('-R -n', "Illegal 'numeric' option with the 'restore' command");
  await fails('-Z -n', "Illegal 'numeric' option with the 'zero' command");
  await fails('-L -s rr', "Illegal 'scheduler' option with the 'list' command");
  await fails('-L -c -t 198.18.1.100:80', "The option 'service-address' conflicts with the 'connection' option in the 'list' command");
  await fails('-L --timeout --daemon', "The option 'daemon' conflicts with the 'timeout' option in the 'list' command");
  await fails('-L -c --stats', 'options conflicts in the list command');
  await fails('-L --timeout --persistent-conn', 'options conflicts in the list command');
  await fails('--set 1 2', '--set option requires 3 timeout values');
  await fails('--set 1 2 3 4', 'unexpected argument 4');
  await fails('--set 1 2 x', "invalid timeout value `x' specified");
  await fails('-L foo', 'unexpected argument foo');
  await fails('-A -t 198.18.1.100:80 -s rr -s wrr', "multiple 'scheduler' options specified");
  await fails('-a -t 198.18.1.100:80 -r 198.18.1.11 -g -m', "multiple 'forwarding-method' options specified");
  await fails('--start-daemon foo', 'illegal start-daemon parameter specified');
  await fails('--stop-daemon foo', 'illegal start_daemon specified');
  await fails('--stop-daemon master --mcast-port 5', "Illegal 'mcast-port' option with the 'stop-daemon' command");
});

test('a second command or -h after the command is an invalid option (ipvsadm 1.31 never says "multiple commands")', async () => {
  await fails('-A -t 198.18.1.100:80 -D', "invalid option `-D'");
  await fails('-Ln -L', "invalid option `-L'");
  await fails('-Lh', "invalid option `-Lh'");
  await fails('-L --start-daemon master', "invalid option `master'");
});

test('the first option must be a command; popt errors after it print "<arg>: <error>" with status 255', async () => {
  await fails('', TRY, 255);
  await fails('-n -L', TRY, 255);
  await fails('foo', TRY, 255);
  await fails('--bogus', TRY, 255);
  await fails('--start-daemon', TRY, 255);
  assert.deepEqual(await parse('-A -t'), { kind: 'error', code: 255, stderr: '-t: missing argument\n' });
  assert.deepEqual(await parse('-A -t 198.18.1.100:80 --bogus'), { kind: 'error', code: 255, stderr: '--bogus: unknown option\n' });
  assert.deepEqual(await parse('-A -t 198.18.1.100:80 -q'), { kind: 'error', code: 255, stderr: '-q: unknown option\n' });
  assert.deepEqual(await parse('-L --stats=1'), { kind: 'error', code: 255, stderr: '--stats=1: option does not take an argument\n' });
  await fails('-L -list', "invalid option `-list'");
});

test('-h prints version and usage to stdout with status 0; -v prints the version naming tsvs', async () => {
  const h = await parse('-h');
  assert.equal(h.kind, 'exit');
  if (h.kind !== 'exit') return;
  assert.equal(h.code, 0);
  assert.match(h.stdout, /^tsvsadm v9\.9\.9 \(tsvs; ipvsadm v1\.31 2019\/12\/24 compatible, IPVS v1\.2\.1\)\nUsage:\n  tsvsadm -A\|E virtual-service/);
  assert.match(h.stdout, /  --persistent   -p \[timeout\]         persistent service\n/);
  assert.deepEqual(await parse('--version'), { kind: 'exit', code: 0, stdout: 'tsvsadm v9.9.9 (tsvs; ipvsadm v1.31 2019/12/24 compatible, IPVS v1.2.1)\n', stderr: '' });
});

test('a nested -R inside restore input is refused like ipvsadm', async () => {
  const o = await parse('-R', true);
  assert.deepEqual(o, { kind: 'exit', code: 255, stdout: '', stderr: TRY + '\n' });
});

test('IPv6 addresses: [addr]:port, bare addr without a port, prefix-length masks, mixed families only for TUN', async () => {
  const v6 = { type: 'tcp', addr: '2001:db8:1::100', port: 80 };
  assert.deepEqual(await req('-A -t [2001:db8:1::100]:80 -s rr'), { op: 'add-service', service: v6, config: { ...DEF_CFG, scheduler: 'rr', netmask: '128' } });
  // inet_pton then inet_ntop: the daemon gets one spelling whatever the user typed; names for the port still work.
  assert.deepEqual(await req('-A -t [2001:0DB8:1::0100]:http'), { op: 'add-service', service: v6, config: { ...DEF_CFG, netmask: '128' } });
  assert.deepEqual(await req('-A -t [::ffff:198.18.1.100]:80'), { op: 'add-service', service: { ...v6, addr: '::ffff:198.18.1.100' }, config: { ...DEF_CFG, netmask: '128' } });
  // Without brackets the whole text is the address (no port), as parse_service tries inet_pton first.
  await fails('-A -t 2001:db8:1::100', 'Zero port specified for non-persistent service');
  assert.deepEqual(await req('-A -t 2001:db8:1::100:80 -p'), {
    op: 'add-service',
    service: { type: 'tcp', addr: '2001:db8:1::100:80', port: 0 },
    config: { ...DEF_CFG, persistent: true, timeout: 360, netmask: '128' },
  });
  await fails('-A -t [2001:db8:1::100]', 'illegal virtual server address[:port] specified');
  await fails('-A -t [2001:db8:1::100:80', 'illegal virtual server address[:port] specified');
  await fails('-A -t [2001:db8:1::100]:80x', 'illegal virtual server address[:port] specified');
  // A bracketed IPv4 address loses its port (the strrchr that finds it runs on the bracket-less text).
  await fails('-A -t [198.18.1.100]:80', 'Zero port specified for non-persistent service');
  assert.deepEqual(await req('-A -t [2001:db8:1::100]:80 -p 60 -M 64'), { op: 'add-service', service: v6, config: { ...DEF_CFG, persistent: true, timeout: 60, netmask: '64' } });
  await fails('-A -t [2001:db8:1::100]:80 -p 60 -M 129', 'illegal ipv6 netmask specified');
  await fails('-A -t [2001:db8:1::100]:80 -M 255.255.255.0', 'illegal ipv6 netmask specified');
  assert.deepEqual(await req('-a -t [2001:db8:1::100]:80 -r [2001:db8:2::11]:8080 -m -w 2'), {
    op: 'add-server',
    service: v6,
    dest: { ...DEF_DEST, addr: '2001:db8:2::11', port: 8080, fwd: 'masq', weight: 2 },
  });
  assert.deepEqual(await req('-a -t [2001:db8:1::100]:80 -r 2001:db8:2::11 -g'), { op: 'add-server', service: v6, dest: { ...DEF_DEST, addr: '2001:db8:2::11', port: 80 } });
  assert.deepEqual(await req('-a -t [2001:db8:1::100]:80 -r 198.19.0.11 -i'), { op: 'add-server', service: v6, dest: { ...DEF_DEST, addr: '198.19.0.11', port: 80, fwd: 'tunnel' } });
  await fails('-a -t [2001:db8:1::100]:80 -r 198.18.1.11 -m', 'Different address family is allowed only for tunneling servers');
  assert.deepEqual(await req('-L -t [2001:db8:1::100]:80 -n'), { op: 'list', service: v6 });
});
