// Golden IPv6 listings: -L -n, --stats, -S and -c typed by hand from ipvsadm 1.31's printf formats (IPv6 names are never cut; af sorts after IPv4).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ConnEntry, ListResult } from '../../src/ctl/protocol.ts';
import { F0, dest, svc } from './entries.ts';
import { formatConnections, formatList, formatOneService } from '../../src/cli/tsvsadm/format.ts';
import { formatSave } from '../../src/cli/tsvsadm/save.ts';
import { addrWords, inetPton6, type Names } from '../../src/cli/tsvsadm/resolve.ts';

const LONG = '2001:db8:1234:5678:9abc:def0:1234:5678';
// Addresses as a daemon might spell them (leading zeros, upper case): listings print inet_ntop's form.
const TABLE: ListResult = {
  version: '1.2.1',
  size: 4096,
  services: [
    svc({ type: 'fwmark', fwmark: 9, ipv6: true }, 'mh', [dest('2001:db8:2::11', 0, 'route', 1, 0, 0)], { schedFlags: 2 }),
    svc({ type: 'udp', addr: '2001:db8:1::100', port: 53 }, 'sh', [dest('2001:db8:3::5', 53, 'tunnel', 1, 0, 4), dest('198.19.0.11', 53, 'tunnel', 1, 0, 4)], {
      persistent: true, timeout: 360, netmask: '64',
    }),
    svc({ type: 'tcp', addr: LONG, port: 65535 }, 'wlc', [dest('2001:DB8:1234:5678:9ABC:DEF0:1234:0011', 65535, 'route', 1, 0, 0)]),
    svc({ type: 'tcp', addr: '2001:0db8:0001:0000:0000:0000:0000:0100', port: 80 }, 'rr', [
      dest('2001:db8:2::12', 8080, 'masq', 2, 5, 20, { stats: { conns: 1234, inpkts: 56789, outpkts: 45678, inbytes: 123456789, outbytes: 2000000000 } }),
      dest('2001:db8:2::11', 8080, 'masq', 1, 3, 12),
    ], { stats: { conns: 1234, inpkts: 56789, outpkts: 45678, inbytes: 123456789, outbytes: 2000000000 } }),
    svc({ type: 'tcp', addr: '198.18.1.100', port: 80 }, 'rr', [dest('198.18.1.11', 80, 'route', 1, 0, 0)]),
  ],
};

test('-L -n: IPv6 services after IPv4 ones, brackets, names never cut, mask as a prefix length, mixed-family TUN dests', () => {
  const want =
    'IP Virtual Server version 1.2.1 (size=4096)\n' +
    'Prot LocalAddress:Port Scheduler Flags\n' +
    '  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n' +
    'TCP  198.18.1.100:80 rr\n' +
    '  -> 198.18.1.11:80               Route   1      0          0         \n' +
    'TCP  [2001:db8:1::100]:80 rr\n' +
    '  -> [2001:db8:2::11]:8080        Masq    1      3          12        \n' +
    '  -> [2001:db8:2::12]:8080        Masq    2      5          20        \n' +
    'TCP  [2001:db8:1234:5678:9abc:def0:1234:5678]:65535 wlc\n' +
    '  -> [2001:db8:1234:5678:9abc:def0:1234:11]:65535 Route   1      0          0         \n' +
    'UDP  [2001:db8:1::100]:53 sh persistent 360 mask 64\n' +
    '  -> 198.19.0.11:53               Tunnel  1      0          4         \n' +
    '  -> [2001:db8:3::5]:53           Tunnel  1      0          4         \n' +
    'FWM  9 IPv6 mh (mh-port)\n' +
    '  -> [2001:db8:2::11]:0           Route   1      0          0         \n';
  assert.equal(formatList(TABLE, F0, null), want);
});

test('-L -n -t [2001:db8:1::100]:80 --stats: the service column is %-33s, longer IPv6 names push the counters right', () => {
  const want =
    'Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n' +
    '  -> RemoteAddress:Port\n' +
    'TCP  [2001:db8:1::100]:80             1234    56789    45678  123456K    2000M\n' +
    '  -> [2001:db8:2::11]:8080               0        0        0        0        0\n' +
    '  -> [2001:db8:2::12]:8080            1234    56789    45678  123456K    2000M\n';
  assert.equal(formatOneService(TABLE.services[3]!, { ...F0, stats: true }, null), want);
  const long = formatOneService(TABLE.services[2]!, { ...F0, stats: true }, null).split('\n')[2];
  assert.equal(long, 'TCP  [2001:db8:1234:5678:9abc:def0:1234:5678]:65535        0        0        0        0        0');
});

test('-S -n: IPv6 rules in brackets, -M as a prefix length, fwmark -6', () => {
  const want =
    '-A -t 198.18.1.100:80 -s rr\n' +
    '-a -t 198.18.1.100:80 -r 198.18.1.11:80 -g -w 1\n' +
    '-A -t [2001:db8:1::100]:80 -s rr\n' +
    '-a -t [2001:db8:1::100]:80 -r [2001:db8:2::11]:8080 -m -w 1\n' +
    '-a -t [2001:db8:1::100]:80 -r [2001:db8:2::12]:8080 -m -w 2\n' +
    '-A -t [2001:db8:1234:5678:9abc:def0:1234:5678]:65535 -s wlc\n' +
    '-a -t [2001:db8:1234:5678:9abc:def0:1234:5678]:65535 -r [2001:db8:1234:5678:9abc:def0:1234:11]:65535 -g -w 1\n' +
    '-A -u [2001:db8:1::100]:53 -s sh -p 360 -M 64\n' +
    '-a -u [2001:db8:1::100]:53 -r 198.19.0.11:53 -i -w 1 --tun-type ipip\n' +
    '-a -u [2001:db8:1::100]:53 -r [2001:db8:3::5]:53 -i -w 1 --tun-type ipip\n' +
    '-A -f 9 -6 -s mh -b mh-port\n' +
    '-a -f 9 -6 -r [2001:db8:2::11]:0 -g -w 1\n';
  assert.equal(formatSave(TABLE, null), want);
});

test('-L -c: IPv6 connections; addresses wider than the 18-column fields push the next ones right', () => {
  const conns: ConnEntry[] = [
    { proto: 'TCP', caddr: '2001:db8::2', cport: 40000, vaddr: '2001:db8:1::100', vport: 80, daddr: '2001:db8:2::11', dport: 8080, state: 'ESTABLISHED', expire: 899 },
    { proto: 'UDP', caddr: '2001:db8::7', cport: 5353, vaddr: '2001:db8:1::100', vport: 53, daddr: '2001:db8:3::5', dport: 53, state: 'UDP', expire: 61 },
    { proto: 'TCP', caddr: '::ffff:c612:2', cport: 1, vaddr: '::1', vport: 80, daddr: '::1', dport: 80, state: 'SYN_RECV', expire: 30 },
  ];
  assert.equal(
    formatConnections(conns, F0, null),
    'IPVS connection entries\n' +
      'pro expire state       source             virtual            destination\n' +
      'TCP 14:59  ESTABLISHED [2001:db8::2]:40000 [2001:db8:1::100]:80 [2001:db8:2::11]:8080\n' +
      'UDP 01:01  UDP         [2001:db8::7]:5353 [2001:db8:1::100]:53 [2001:db8:3::5]:53\n' +
      'TCP 00:30  SYN_RECV    [::ffff:198.18.0.2]:1 [::1]:80           [::1]:80\n',
  );
});

test('names without -n: an IPv6 host name goes inside the brackets, the port becomes its service name', () => {
  const names: Names = {
    host: (a) => (a === '2001:db8:2::11' ? 'rs1.example.net' : null),
    service: (p, proto) => (p === 8080 && proto === 'tcp' ? 'http-alt' : null),
  };
  const out = formatOneService(TABLE.services[3]!, { ...F0, numeric: false }, names).split('\n');
  assert.equal(out[2], 'TCP  [2001:db8:1::100]:80 rr');
  assert.equal(out[3], '  -> [rs1.example.net]:http-alt   Masq    1      3          12        ');
});

test('inet_pton/inet_ntop forms and the sort words of both families', () => {
  assert.equal(inetPton6('2001:0DB8::0001'), '2001:db8::1');
  assert.equal(inetPton6('::ffff:198.18.1.100'), '::ffff:198.18.1.100');
  assert.equal(inetPton6('::ffff:c612:164'), '::ffff:198.18.1.100');
  assert.equal(inetPton6('fe80::1%eth0'), null);
  assert.equal(inetPton6('198.18.1.100'), null);
  assert.deepEqual(addrWords('2001:db8:1::100'), [0x20010db8, 0x00010000, 0, 0x100]);
  // IPv4 in the union's first word, zeros after: the C comparison runs over all four.
  assert.deepEqual(addrWords('198.18.1.100'), [0xc6120164, 0, 0, 0]);
});
