// The YAML config: defaults, validation errors that name the file, line and field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ConfigError, parseConfigText, parseAddressSpec, parseRouteSpec } from '../../src/ctl/config.ts';

test('config: a full file parses with defaults filled in', () => {
  const c = parseConfigText(`
interfaces: [eth1, eth2]
addresses: ["198.18.1.100/32@eth1", "198.18.2.1/24@eth2"]
routes: ["198.19.0.0/24=198.18.1.1"]
gateway: 198.18.1.1
services:
  - protocol: tcp
    address: 198.18.1.100
    port: 80
    scheduler: rr
    realservers:
      - { address: 198.18.2.11, port: 8080, method: nat, weight: 2 }
      - { address: 198.18.2.12 }
`);
  assert.deepEqual(c.interfaces, ['eth1', 'eth2']);
  assert.equal(c.services[0]!.realservers[0]!.method, 'nat');
  assert.equal(c.services[0]!.realservers[1]!.method, 'dr');
  assert.equal(c.services[0]!.realservers[1]!.weight, 1);
  assert.equal(c.conn_table_size, 1 << 20);
  assert.deepEqual(parseAddressSpec(c.addresses[1]!), { addr: '198.18.2.1', prefix: 24, ifname: 'eth2' });
  assert.deepEqual(parseRouteSpec(c.routes[0]!), { prefix: '198.19.0.0', len: 24, gateway: '198.18.1.1' });
});

test('config: errors name the line and the field', () => {
  const text = `interfaces: [eth1]
services:
  - protocol: tcp
    address: 198.18.1.100
    port: 80
    realservers:
      - address: 198.18.2.300
        weight: -1
`;
  assert.throws(() => parseConfigText(text, 'tsvs.yaml'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /tsvs\.yaml:7: services\[0\]\.realservers\[0\]\.address: must be an IPv4 address/);
    assert.match(e.message, /tsvs\.yaml:8: services\[0\]\.realservers\[0\]\.weight/);
    return true;
  });
});

test('config: unknown keys, YAML syntax errors and bad address specs are refused', () => {
  assert.throws(() => parseConfigText('interfacez: [eth1]\n', 'f'), /f:1: .*interfacez/);
  assert.throws(() => parseConfigText('interfaces: [eth1\n', 'f'), /^ConfigError: f:\d+:|f:\d+:/);
  assert.throws(() => parseConfigText('addresses: ["198.18.1.100@eth1"]\n', 'f'), /ADDR\/PREFIX@IFNAME/);
  assert.throws(() => parseConfigText('services: [{protocol: tcp, address: 198.18.1.1, port: 0}]\n', 'f'), /Zero port specified/);
});
