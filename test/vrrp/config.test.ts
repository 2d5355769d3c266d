// VRRP configuration: keepalived.conf's vrrp_instance/vrrp_sync_group with keepalived's defaults, the YAML form, and bad set-ups refused with file:line:field.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseKeepalivedText } from '../../src/ctl/keepalived.ts';
import { parseTsvsdArgs } from '../../src/cli/tsvsd-args.ts';
import { ConfigError } from '../../src/ctl/config.ts';

const KA = `global_defs {
  router_id lb1
  vrrp_garp_master_repeat 3
}
vrrp_sync_group G1 {
  group {
    VI_VIP
    VI_DIP
  }
  notify_master "/etc/tsvs/master.sh"
  notify /etc/tsvs/notify.sh
}
vrrp_instance VI_VIP {
  state BACKUP
  interface eth0
  virtual_router_id 51
  priority 150
  nopreempt
  authentication {
    auth_type PASS
    auth_pass s3cret
  }
  unicast_src_ip 198.18.1.2
  unicast_peer {
    198.18.1.3
  }
  track_interface {
    eth1 weight -20
    eth2
  }
  virtual_ipaddress {
    198.18.1.100/32 dev eth0
    198.18.1.101 label eth0:1
  }
  notify_backup /etc/tsvs/backup.sh
}
vrrp_instance VI_DIP {
  interface eth1
  virtual_router_id 52
  version 3
  advert_int 0.5
  virtual_ipaddress {
    198.18.2.1/24
  }
}
`;

test('vrrp config: keepalived.conf instances and sync groups, with keepalived defaults', () => {
  const { config } = parseKeepalivedText(KA, 'ka.conf');
  const [vip, dip] = config.vrrp.instances;
  assert.deepEqual(
    { ...vip },
    {
      name: 'VI_VIP',
      interface: 'eth0',
      vrid: 51,
      version: 2,
      priority: 150,
      advert_int: 1,
      state: 'BACKUP',
      preempt: false,
      preempt_delay: 0,
      addresses: ['198.18.1.100/32@eth0', '198.18.1.101/32'],
      unicast_src_ip: '198.18.1.2',
      unicast_peers: ['198.18.1.3'],
      auth_pass: 's3cret',
      track_interfaces: [{ name: 'eth1', weight: -20 }, { name: 'eth2', weight: 0 }],
      track_services: [],
      garp_master_delay: 5,
      garp_master_repeat: 3,
      garp_master_refresh: 0,
      garp_master_refresh_repeat: 1,
      notify_backup: '/etc/tsvs/backup.sh',
    },
  );
  assert.equal(dip!.version, 3);
  assert.equal(dip!.advert_int, 0.5);
  assert.equal(dip!.priority, 100, "keepalived's default priority");
  assert.equal(dip!.preempt, true, 'preempt is on by default');
  assert.deepEqual(config.vrrp.sync_groups, [{ name: 'G1', instances: ['VI_VIP', 'VI_DIP'], notify_master: '/etc/tsvs/master.sh', notify: '/etc/tsvs/notify.sh' }]);
});

test('vrrp config: unsupported and bad VRRP keywords are reported with file and line', () => {
  const text = `vrrp_script chk {
  script "true"
}
vrrp_instance VI_1 {
  interface eth0
  virtual_router_id 300
  authentication {
    auth_type AH
  }
  virtual_ipaddress {
    198.18.1.100/32 brd 198.18.1.255
  }
  use_vmac
}
`;
  assert.throws(() => parseKeepalivedText(text, 'ka.conf'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    const lines = e.message.split('\n');
    for (const [n, re] of [
      [1, /vrrp_script is not supported by tsvs/],
      [6, /virtual_router_id: bad value "300"/],
      [8, /auth_type AH/],
      [11, /"brd" is not supported/],
      [13, /use_vmac is not supported/],
    ] as const)
      assert.ok(lines.some((l) => l.startsWith(`ka.conf:${n}: `) && re.test(l)), `${n} ${re}: ${e.message}`);
    return true;
  });
});

function withFile(name: string, text: string, fn: (path: string) => void) {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-vrrp-'));
  try {
    const p = join(dir, name);
    writeFileSync(p, text);
    fn(p);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

test('vrrp config: duplicate VRID on an interface, an address in two instances, an unknown interface: refused with file:line:field', () => {
  const yaml = `interfaces: [eth0]
addresses: ["198.18.1.2/24@eth0"]
vrrp:
  instances:
    - name: A
      interface: eth0
      vrid: 51
      addresses: ["198.18.1.100/32"]
    - name: B
      interface: eth0
      vrid: 51
      addresses:
        - "198.18.1.100/32"
    - name: C
      interface: eth9
      vrid: 7
      addresses: ["198.18.1.102/32"]
  sync_groups:
    - name: G
      instances: [A, Z]
`;
  withFile('tsvsd.yaml', yaml, (p) => {
    assert.throws(() => parseTsvsdArgs(['--config', p], {}), (e: unknown) => {
      assert.ok(e instanceof ConfigError);
      const lines = e.message.split('\n');
      const want: Array<[number, RegExp]> = [
        [11, /vrrp\.instances\[1\]\.vrid: VRID 51 on eth0 is already used by instance A/],
        [13, /vrrp\.instances\[1\]\.addresses\[0\]: address 198\.18\.1\.100 is already in instance A/],
        [15, /vrrp\.instances\[2\]\.interface: interface eth9 is not one of the director's interfaces/],
        [20, /vrrp\.sync_groups\[0\]\.instances\[1\]: no instance Z/],
      ];
      for (const [n, re] of want) assert.ok(lines.some((l) => l.startsWith(`${p}:${n}: `) && re.test(l)), `${n} ${re}:\n${e.message}`);
      return true;
    });
  });
  // keepalived.conf: interfaces come from the command line; the error still names the file's line.
  withFile('keepalived.conf', KA.replace('virtual_router_id 52', 'virtual_router_id 51').replace('interface eth1', 'interface eth0'), (p) => {
    assert.throws(
      () => parseTsvsdArgs(['--config', p, '--interface', 'eth0', '--interface', 'eth1', '--address', '198.18.1.2/24@eth0'], {}),
      (e: unknown) => {
        assert.ok(e instanceof ConfigError);
        assert.match(e.message, new RegExp(`^${p}:39: vrrp\\.instances\\[1\\]\\.vrid: VRID 51 on eth0 is already used by instance VI_VIP`, 'm'));
        return true;
      },
    );
  });
  // An instance address may not also be a fixed --address; adverts need an address of the director's own there.
  const one = `vrrp:\n  instances:\n    - { name: A, interface: eth0, vrid: 1, addresses: ["198.18.1.100/32"] }\n`;
  withFile('tsvsd.yaml', one, (p) => {
    assert.throws(() => parseTsvsdArgs(['--config', p, '--interface', 'eth0', '--address', '198.18.1.100/32@eth0'], {}), /:3: vrrp\.instances\[0\]\.addresses\[0\]: address 198\.18\.1\.100 is also given with --address/);
    assert.throws(() => parseTsvsdArgs(['--config', p, '--interface', 'eth0'], {}), /:3: vrrp\.instances\[0\]\.interface: the director has no address of its own on eth0/);
    assert.equal(parseTsvsdArgs(['--config', p, '--interface', 'eth0', '--address', '198.18.1.2/24@eth0'], {}).config.vrrp.instances.length, 1);
  });
});

test("vrrp config: keepalived derives what is not given: state MASTER without a priority is the owner (255), priority 255 without a state starts MASTER", () => {
  const ka = (body: string) => parseKeepalivedText(`vrrp_instance VI_1 {\n  interface eth0\n  virtual_router_id 51\n${body}  virtual_ipaddress {\n    198.18.1.100\n  }\n}\n`, 'ka.conf').config.vrrp.instances[0]!;
  assert.equal(ka('  state MASTER\n').priority, 255);
  assert.equal(ka('  state BACKUP\n').priority, 100);
  assert.equal(ka('').priority, 100);
  assert.equal(ka('').state, undefined);
  assert.equal(ka('  state MASTER\n  priority 120\n').priority, 120);
});
