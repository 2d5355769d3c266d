// Golden listings: expected text written by hand from ipvsadm 1.31's printf formats, fed the protocol's result objects.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConnEntry, ListResult } from '../../src/ctl/protocol.ts';
import { F0, dest, svc } from './entries.ts';
import { formatConnections, formatDaemons, formatList, formatOneService, formatTimeouts, largenum } from '../../src/cli/tsvsadm/format.ts';
import { formatSave } from '../../src/cli/tsvsadm/save.ts';
import type { Names } from '../../src/cli/tsvsadm/resolve.ts';

// Deliberately not in listing order: the lister sorts (kernel order is hash order, dests newest first).
const TABLE: ListResult = {
  version: '1.2.1',
  size: 4096,
  services: [
    svc({ type: 'fwmark', fwmark: 7 }, 'sh', [dest('10.0.1.9', 0, 'tunnel', 1, 0, 0)], { schedFlags: 2 }),
    svc({ type: 'udp', addr: '10.0.0.2', port: 5060 }, 'rr', [dest('10.0.0.7', 5060, 'route', 0, 0, 0)], { onePacket: true }),
    svc({ type: 'udp', addr: '10.0.0.1', port: 53 }, 'wlc', [dest('10.0.1.5', 53, 'route', 1, 0, 4, { uThreshold: 100, lThreshold: 10 })], {
      persistent: true, timeout: 360, netmask: '255.255.255.0',
    }),
    svc({ type: 'tcp', addr: '207.175.44.110', port: 8080 }, 'lc', [dest('127.0.0.1', 8080, 'local', 1, 0, 0)]),
    svc({ type: 'tcp', addr: '207.175.44.110', port: 80 }, 'rr', [dest('192.168.10.2', 80, 'masq', 2, 5, 20), dest('192.168.10.1', 80, 'masq', 1, 3, 12)]),
  ],
};

test('-L -n: header, title, every forwarding method, persistence with mask, ops, scheduler flags, sorted', () => {
  const want =
    'IP Virtual Server version 1.2.1 (size=4096)\n' +
    'Prot LocalAddress:Port Scheduler Flags\n' +
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
    'TCP  207.175.44.110:80 rr\n' +
    '  -> 192.168.10.1:80              Masq    1      3          12        \n' +
    '  -> 192.168.10.2:80              Masq    2      5          20        \n' +
    'TCP  207.175.44.110:8080 lc\n' +
    '  -> 127.0.0.1:8080               Local   1      0          0         \n' +
    'UDP  10.0.0.1:53 wlc persistent 360 mask 255.255.255.0\n' +
    '  -> 10.0.1.5:53                  Route   1      0          4         \n' +
    'UDP  10.0.0.2:5060 rr ops\n' +
    '  -> 10.0.0.7:5060                Route   0      0          0         \n' +
    'FWM  7 sh (sh-port)\n' +
    '  -> 10.0.1.9:0                   Tunnel  1      0          0         \n';
  assert.equal(formatList(TABLE, F0, null), want);
});

test('--nosort keeps the director order', () => {
  const out = formatList(TABLE, { ...F0, nosort: true }, null).split('\n');
  assert.equal(out[3], 'FWM  7 sh (sh-port)');
  assert.equal(out[12], '  -> 192.168.10.2:80              Masq    2      5          20        ');
});

test('--thresholds and --persistent-conn columns (trailing spaces included)', () => {
  const one = TABLE.services[2]!;
  assert.equal(
    formatOneService(one, { ...F0, thresholds: true }, null),
    'Prot LocalAddress:Port            Uthreshold Lthreshold ActiveConn InActConn \n' +
      '  -> RemoteAddress:Port\n' +
      'UDP  10.0.0.1:53 wlc persistent 360 mask 255.255.255.0\n' +
      '  -> 10.0.1.5:53                  100        10         0          4         \n',
  );
  const pc = { ...one, dests: [{ ...one.dests[0]!, persistConns: 7 }] };
  assert.equal(
    formatOneService(pc, { ...F0, persistentConn: true }, null),
    'Prot LocalAddress:Port            Weight    PersistConn ActiveConn InActConn \n' +
      '  -> RemoteAddress:Port\n' +
      'UDP  10.0.0.1:53 wlc persistent 360 mask 255.255.255.0\n' +
      '  -> 10.0.1.5:53                  1         7           0          4         \n',
  );
});

test('print_largenum: 9 columns, K/M/G/T above 1e8/1e9/1e11/1e14, --exact widens', () => {
  assert.equal(largenum(0, false), '        0');
  assert.equal(largenum(99999999, false), ' 99999999');
  assert.equal(largenum(100000000, false), '  100000K');
  assert.equal(largenum(999999999, false), '  999999K');
  assert.equal(largenum(1000000000, false), '    1000M');
  assert.equal(largenum(99999999999, false), '   99999M');
  assert.equal(largenum(100000000000, false), '     100G');
  assert.equal(largenum(100000000000000, false), '     100T');
  assert.equal(largenum(12345678, true), ' 12345678');
  assert.equal(largenum(123456789012, true), ' 123456789012');
});

test('--stats and --rate with large counters', () => {
  const s = svc({ type: 'tcp', addr: '207.175.44.110', port: 80 }, 'rr', [
    dest('192.168.10.1', 80, 'masq', 1, 0, 0, {
      stats: { conns: 600, inpkts: 50000, outpkts: 40000, inbytes: 60000000, outbytes: 5000000000 },
      rates: { cps: 123456789, inpps: 20, outpps: 30, inbps: 250000000000, outbps: 500000000000000 },
    }),
  ], {
    stats: { conns: 1234, inpkts: 98765, outpkts: 87654, inbytes: 123456789, outbytes: 9876543210 },
    rates: { cps: 5, inpps: 100000000, outpps: 7, inbps: 1000000000, outbps: 3 },
  });
  const list: ListResult = { version: '1.2.1', size: 4096, services: [s] };
  assert.equal(
    formatList(list, { ...F0, stats: true }, null),
    'IP Virtual Server version 1.2.1 (size=4096)\n' +
      'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n' +
      '  -> RemoteAddress:Port\n' +
      'TCP  207.175.44.110:80                1234    98765    87654  123456K    9876M\n' +
      '  -> 192.168.10.1:80                   600    50000    40000 60000000    5000M\n',
  );
  // Dest rate lines print CPS/InPPS/OutPPS with %8llu, never abbreviated.
  assert.equal(
    formatList(list, { ...F0, rate: true }, null),
    'IP Virtual Server version 1.2.1 (size=4096)\n' +
      'Prot LocalAddress:Port                 CPS    InPPS   OutPPS    InBPS   OutBPS\n' +
      '  -> RemoteAddress:Port\n' +
      'TCP  207.175.44.110:80                   5  100000K        7    1000M        3\n' +
      '  -> 192.168.10.1:80              123456789       20       30     250G     500T\n',
  );
  assert.equal(
    formatOneService(s, { ...F0, stats: true, exact: true }, null).split('\n')[2],
    'TCP  207.175.44.110:80                1234    98765    87654 123456789 9876543210',
  );
});

test('sort order: fwmark, protocol, then address with the signed 32-bit wrap, then port', () => {
  const mk = (addr: string, port = 80) => svc({ type: 'tcp', addr, port }, 'rr', []);
  const list: ListResult = { version: '1.2.1', size: 4096, services: [mk('10.0.0.1'), mk('192.168.0.1'), mk('172.16.0.1'), mk('1.1.1.1')] };
  // Worked by hand through glibc's merge sort: 10.0.0.1 - 192.168.0.1 wraps positive, so 10.x sorts after 192.x.
  assert.deepEqual(formatList(list, F0, null).split('\n').slice(3, -1), [
    'TCP  172.16.0.1:80 rr',
    'TCP  192.168.0.1:80 rr',
    'TCP  1.1.1.1:80 rr',
    'TCP  10.0.0.1:80 rr',
  ]);
  const two: ListResult = { version: '1.2.1', size: 4096, services: [mk('10.0.0.1'), mk('192.168.0.1')] };
  assert.deepEqual(formatList(two, F0, null).split('\n').slice(3, -1), ['TCP  192.168.0.1:80 rr', 'TCP  10.0.0.1:80 rr']);
  const mixed: ListResult = {
    version: '1.2.1',
    size: 4096,
    services: [svc({ type: 'fwmark', fwmark: 2 }, 'rr', []), svc({ type: 'udp', addr: '1.2.3.4', port: 53 }, 'rr', []), mk('1.2.3.4', 443), mk('1.2.3.4', 22)],
  };
  assert.deepEqual(formatList(mixed, F0, null).split('\n').slice(3, -1), ['TCP  1.2.3.4:22 rr', 'TCP  1.2.3.4:443 rr', 'UDP  1.2.3.4:53 rr', 'FWM  2 rr']);
});

test('names without -n: host and service names, cut at 33 (service) and 28 (real server) columns', () => {
  const names: Names = {
    host: (a) => (a === '198.18.1.100' ? 'a-rather-long-virtual-host.example.net' : a === '198.18.1.11' ? 'rs1.example.net' : null),
    service: (p, proto) => (p === 80 && proto === 'tcp' ? 'http' : null),
  };
  const list: ListResult = {
    version: '1.2.1',
    size: 4096,
    services: [svc({ type: 'tcp', addr: '198.18.1.100', port: 80 }, 'wlc', [dest('198.18.1.11', 80, 'route', 1, 0, 0), dest('198.18.1.12', 8080, 'masq', 1, 0, 0)])],
  };
  assert.equal(
    formatList(list, { ...F0, numeric: false }, names).split('\n').slice(3).join('\n'),
    'TCP  a-rather-long-virtual-host.e wlc\n' +
      '  -> rs1.example.net:http         Route   1      0          0         \n' +
      '  -> 198.18.1.12:8080             Masq    1      0          0         \n',
  );
  assert.equal(formatSave(list, names).split('\n')[0], '-A -t a-rather-long-virtual-host.example.net:http -s wlc');
});

test('-c connection listing: state names, expire mm:ss (minutes not capped), templates', () => {
  const conns: ConnEntry[] = [
    { proto: 'TCP', caddr: '10.0.0.2', cport: 51234, vaddr: '207.175.44.110', vport: 80, daddr: '192.168.10.1', dport: 80, state: 'ESTABLISHED', expire: 898 },
    { proto: 'UDP', caddr: '10.0.0.2', cport: 40000, vaddr: '10.0.0.1', vport: 53, daddr: '10.0.1.5', dport: 53, state: 'UDP', expire: 299 },
    { proto: 'UDP', caddr: '10.0.0.2', cport: 0, vaddr: '10.0.0.1', vport: 53, daddr: '10.0.1.5', dport: 53, state: 'NONE', expire: 359 },
    { proto: 'IP', caddr: '10.0.0.2', cport: 0, vaddr: '0.0.0.7', vport: 0, daddr: '10.0.1.9', dport: 0, state: 'ASSURED', expire: 6000 },
  ];
  assert.equal(
    formatConnections(conns, F0, null),
    'IPVS connection entries\n' +
      'pro expire state       source             virtual            destination\n' +
      'TCP 14:58  ESTABLISHED 10.0.0.2:51234     207.175.44.110:80  192.168.10.1:80\n' +
      'UDP 04:59  UDP         10.0.0.2:40000     10.0.0.1:53        10.0.1.5:53\n' +
      'UDP 05:59  NONE        10.0.0.2:0         10.0.0.1:53        10.0.1.5:53\n' +
      'IP  100:00 ASSURED     10.0.0.2:0         0.0.0.7:0          10.0.1.9:0\n',
  );
  assert.equal(
    formatConnections([], { ...F0, persistentConn: true }, null),
    'IPVS connection entries\npro expire state       source             virtual            destination        pe name          pe_data\n',
  );
});

test('--timeout', () => {
  assert.equal(formatTimeouts({ tcp: 900, tcpfin: 120, udp: 300 }), 'Timeout (tcp tcpfin udp): 900 120 300\n');
});

test('-S -n: rules in listing order, Local saved as -g, tunnel type spelled out, thresholds not saved', () => {
  assert.equal(
    formatSave(TABLE, null),
    '-A -t 207.175.44.110:80 -s rr\n' +
      '-a -t 207.175.44.110:80 -r 192.168.10.1:80 -m -w 1\n' +
      '-a -t 207.175.44.110:80 -r 192.168.10.2:80 -m -w 2\n' +
      '-A -t 207.175.44.110:8080 -s lc\n' +
      '-a -t 207.175.44.110:8080 -r 127.0.0.1:8080 -g -w 1\n' +
      '-A -u 10.0.0.1:53 -s wlc -p 360 -M 255.255.255.0\n' +
      '-a -u 10.0.0.1:53 -r 10.0.1.5:53 -g -w 1\n' +
      '-A -u 10.0.0.2:5060 -s rr -o\n' +
      '-a -u 10.0.0.2:5060 -r 10.0.0.7:5060 -g -w 0\n' +
      '-A -f 7 -s sh -b sh-port\n' +
      '-a -f 7 -r 10.0.1.9:0 -i -w 1 --tun-type ipip\n',
  );
});

test('-L --daemon: ipvsadm 1.31\'s list_daemon lines, master first; nothing without daemons', () => {
  assert.equal(formatDaemons([]), '');
  assert.equal(
    formatDaemons([
      { state: 'backup', mcastIfn: 'eth1', syncid: 9, maxlen: 1024, group: '239.1.2.3', port: 9000, ttl: 4 },
      { state: 'master', mcastIfn: 'lan0', syncid: 0, maxlen: 1472, group: '224.0.0.81', port: 8848, ttl: 1 },
    ]),
    'master sync daemon (mcast=lan0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n' +
      'backup sync daemon (mcast=eth1, syncid=9, maxlen=1024, group=239.1.2.3, port=9000, ttl=4)\n',
  );
});
