// DPVS's keepalived.conf for FullNAT: lb_kind FNAT, local_address_group / laddr_group_name, proxy_protocol.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseKeepalivedText } from '../../src/ctl/keepalived.ts';
import { ConfigError } from '../../src/ctl/config.ts';

const CONF = `local_address_group laddr_g1 {
    198.18.1.50 lan0
    198.18.1.60-62 lan0
}
virtual_server 198.18.1.100 80 {
    lb_algo rr
    lb_kind FNAT
    protocol TCP
    laddr_group_name laddr_g1
    proxy_protocol v2
    real_server 198.19.0.11 8080 { weight 1 }
    real_server 198.19.0.12 8080 { weight 1 }
}
`;

test('lb_kind FNAT with a local_address_group and proxy_protocol becomes a FullNAT service with its LIPs', () => {
  const { config } = parseKeepalivedText(CONF, 'dpvs.conf');
  const s = config.services[0]!;
  assert.equal(s.proxy_protocol, 'v2');
  assert.deepEqual(s.laddrs, ['198.18.1.50', '198.18.1.60', '198.18.1.61', '198.18.1.62'].map((address) => ({ address, interface: 'lan0' })));
  assert.deepEqual(s.realservers.map((r) => [r.address, r.port, r.method]), [['198.19.0.11', 8080, 'fullnat'], ['198.19.0.12', 8080, 'fullnat']]);
});

test('refusals name the line: unknown group, bad range, FNAT without local addresses, bad proxy_protocol', () => {
  const bad = (text: string, re: RegExp) => assert.throws(() => parseKeepalivedText(text, 'dpvs.conf'), (e: unknown) => e instanceof ConfigError && re.test(e.message), text);
  bad(CONF.replace('laddr_group_name laddr_g1', 'laddr_group_name nosuch'), /dpvs\.conf:9: laddr_group_name: no local_address_group nosuch/);
  bad(CONF.replace('198.18.1.60-62', '198.18.1.62-60'), /dpvs\.conf:3: local_address_group laddr_g1: "198\.18\.1\.62-60"/);
  bad(CONF.replace('    laddr_group_name laddr_g1\n', ''), /laddrs/);
  bad(CONF.replace('proxy_protocol v2', 'proxy_protocol v2-insecure'), /dpvs\.conf:10: proxy_protocol: "v2-insecure" is not supported/);
});
