// keepalived.conf's LVS part read into tsvsd's Config: two virtual servers, includes, defaults, and every unsupported keyword reported with its line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync, rmSync, mkdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError } from '../../src/ctl/config.ts';
import { keepalivedHex, loadKeepalivedFile, looksLikeKeepalived, parseKeepalivedText } from '../../src/ctl/keepalived.ts';
import { planHealth } from '../../src/health/plan.ts';

const REALISTIC = `! Configuration File for keepalived
global_defs {
   notification_email {
     ops@example.com
   }
   notification_email_from lb@example.com
   smtp_server 127.0.0.1
   smtp_connect_timeout 30
   router_id LVS_DEVEL
   lvs_timeouts tcp 900 tcpfin 120 udp 300
}

virtual_server 198.18.1.100 80 {
    delay_loop 6
    lb_algo wrr
    lb_kind NAT
    persistence_timeout 50
    persistence_granularity 255.255.255.0
    protocol TCP
    quorum 2
    hysteresis 1
    quorum_up "/usr/local/bin/vs-up.sh web"
    quorum_down /usr/local/bin/vs-down.sh
    sorry_server 198.18.2.99 8080
    alpha
    omega

    real_server 198.18.2.11 8080 {
        weight 3
        inhibit_on_failure
        notify_down "/usr/local/bin/rs.sh down"
        HTTP_GET {
            url {
              path /healthz
              digest 9b3a0c85a887a256d6939da88aabd8cd
              status_code 200-299 301
            }
            url { path /ready }
            connect_timeout 3
            nb_get_retry 3
            delay_before_retry 2
        }
    }
    real_server 198.18.2.12 8080 {   # second web server
        weight 1
        TCP_CHECK {
            connect_port 8081
            connect_timeout 2
            bindto 198.18.2.1
        }
        MISC_CHECK {
            misc_path "/usr/local/bin/load.sh 198.18.2.12"
            misc_timeout 4
            misc_dynamic
        }
    }
}

virtual_server 198.18.1.100 53 {
    lvs_sched rr
    lvs_method DR
    protocol UDP
    ops
    real_server 198.18.1.21 53 {
        UDP_CHECK {
            payload 0001 0100 0001
            require_reply 00x1
            connect_timeout 1
            retry 0
        }
        PING_CHECK {
        }
    }
    real_server 198.18.1.22 53 {
        SSL_GET {
            url {
                path /
                regex "ok|ready"
            }
            sni_name dns.example.com
        }
    }
}
`;

test('keepalived: a realistic file maps onto the YAML model with keepalived defaults', () => {
  const { config, ignored } = parseKeepalivedText(REALISTIC, 'keepalived.conf');
  assert.deepEqual(config.timeouts, { tcp: 900, tcpfin: 120, udp: 300 });
  assert.equal(config.services.length, 2);
  const [web, dns] = config.services;
  assert.equal(web!.protocol, 'tcp');
  assert.equal(web!.address, '198.18.1.100');
  assert.equal(web!.port, 80);
  assert.equal(web!.scheduler, 'wrr');
  assert.equal(web!.persistent, 50);
  assert.equal(web!.netmask, '255.255.255.0');
  assert.equal(web!.quorum, 2);
  assert.equal(web!.hysteresis, 1);
  assert.equal(web!.quorum_up, '/usr/local/bin/vs-up.sh web');
  assert.equal(web!.quorum_down, '/usr/local/bin/vs-down.sh');
  assert.deepEqual(web!.sorry_server, { address: '198.18.2.99', port: 8080, method: 'nat', weight: 1 });
  assert.equal(web!.alpha, true);
  assert.equal(web!.omega, true);
  const [rs1, rs2] = web!.realservers;
  assert.equal(rs1!.method, 'nat');
  assert.equal(rs1!.port, 8080);
  assert.equal(rs1!.weight, 3);
  assert.equal(rs1!.inhibit_on_failure, true);
  assert.equal(rs1!.notify_down, '/usr/local/bin/rs.sh down');
  // One HTTP check per url block; both must pass.
  assert.equal(rs1!.check.length, 2);
  assert.equal(rs1!.check[0]!.type, 'http');
  assert.equal(rs1!.check[0]!.path, '/healthz');
  assert.equal(rs1!.check[0]!.digest, '9b3a0c85a887a256d6939da88aabd8cd');
  assert.equal(rs1!.check[0]!.status, '200-299 301');
  assert.equal(rs1!.check[0]!.interval, 6);
  assert.equal(rs1!.check[0]!.timeout, 3);
  assert.equal(rs1!.check[0]!.fall, 4); // nb_get_retry 3 → three retries after the first failure
  assert.equal(rs1!.check[0]!.delay_before_retry, 2);
  assert.equal(rs1!.check[0]!.alpha, true);
  assert.equal(rs1!.check[1]!.path, '/ready');
  const [tcp, misc] = rs2!.check;
  assert.equal(tcp!.type, 'tcp');
  assert.equal(tcp!.port, 8081);
  assert.equal(tcp!.source, '198.18.2.1');
  assert.equal(tcp!.timeout, 2);
  assert.equal(tcp!.fall, 2); // keepalived's default retry 1
  assert.equal(tcp!.delay_before_retry, 1);
  assert.equal(tcp!.warmup, 6); // keepalived spreads first checks over delay_loop
  assert.equal(misc!.type, 'misc');
  assert.equal(misc!.command, '/usr/local/bin/load.sh 198.18.2.12');
  assert.equal(misc!.timeout, 4);
  assert.equal(misc!.dynamic, true);
  assert.equal(misc!.fall, 1); // MISC_CHECK's default retry is 0

  assert.equal(dns!.protocol, 'udp');
  assert.equal(dns!.scheduler, 'rr');
  assert.equal(dns!.ops, true);
  const [d1, d2] = dns!.realservers;
  assert.equal(d1!.method, 'dr');
  const [udp, ping] = d1!.check;
  assert.equal(udp!.type, 'udp');
  assert.equal(udp!.payload_hex, '000101000001');
  assert.equal(udp!.require_reply, true);
  assert.equal(udp!.reply_hex, '00x1');
  assert.equal(udp!.interval, 60); // keepalived's default delay_loop
  assert.equal(udp!.fall, 1);
  assert.equal(ping!.type, 'ping');
  assert.equal(ping!.timeout, 5);
  assert.equal(d2!.check[0]!.type, 'https');
  assert.equal(d2!.check[0]!.regex, 'ok|ready');
  assert.equal(d2!.check[0]!.virtualhost, 'dns.example.com');
  assert.equal(d2!.check[0]!.verify_tls, false);
  assert.equal(d2!.check[0]!.delay_before_retry, 3);

  // Accepted-but-ignored keys are listed with their lines, never silently dropped.
  assert.ok(ignored.some((l) => /^keepalived\.conf:3: notification_email: /.test(l)));
  assert.ok(ignored.some((l) => /^keepalived\.conf:9: router_id: does not affect the LVS table/.test(l)));
  assert.equal(ignored.length, 5);

  // The same config drives the health monitor.
  const plans = planHealth(config);
  assert.equal(plans.length, 2);
  assert.equal(plans[0]!.servers[0]!.inhibit, true);
  assert.equal(plans[0]!.servers[0]!.checks[0]!.spec.port, 8080);
  assert.equal(plans[0]!.sorry!.port, 8080);
  assert.equal(plans[1]!.servers[0]!.dest.port, 53);
  assert.equal(plans[1]!.servers[0]!.checks[0]!.spec.requireReply, true);
});

test('keepalived: unsupported keywords are each reported with file and line', () => {
  const text = `global_defs {
  router_id x
  lvs_sync_daemon eth0 VI_9
  frobnicate 1
}
vrrp_instance VI_1 {
  state MASTER
  interface eth0
}
virtual_server fwmark 1 {
  lb_algo rr
}
virtual_server 198.18.1.100 80 {
  lb_algo wlc
  persistence_engine sip
  lb_kind TUN type gue port 6080
  real_server 198.18.2.11 80 {
    SMTP_CHECK {
    }
    TCP_CHECK {
      bind_if eth1
      connect_port 99999
    }
    weight lots
  }
  frob
}
virtual_server_group G {
  198.18.1.100 80
}
static_ipaddress {
  198.18.1.100/32 dev eth0
}
`;
  assert.throws(() => parseKeepalivedText(text, 'ka.conf'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    const lines = e.message.split('\n');
    const want: Array<[number, RegExp]> = [
      [3, /lvs_sync_daemon: unable to find vrrp instance VI_9/],
      [4, /global_defs: frobnicate is not supported/],
      [6, /vrrp_instance VI_1: virtual_router_id is required/],
      [6, /vrrp_instance VI_1: virtual_ipaddress is required/],
      [10, /fwmark: firewall-mark services are not supported/],
      [15, /persistence_engine/],
      [16, /only "type ipip"/],
      [18, /SMTP_CHECK is not supported/],
      [21, /bind_if is not supported/],
      [22, /connect_port: bad value "99999"/],
      [24, /weight: bad value "lots"/],
      [26, /virtual_server: frob is not supported/],
      [28, /virtual_server_group is not supported/],
      [31, /static_ipaddress is not supported/],
    ];
    for (const [line, re] of want) {
      assert.ok(lines.some((l) => l.startsWith(`ka.conf:${line}: `) && re.test(l)), `line ${line} ${re}: ${e.message}`);
    }
    // The VRRP keywords given are fine: the errors are the missing ones.
    assert.ok(!lines.some((l) => /ka\.conf:[78]:/.test(l)));
    assert.equal(lines.length, want.length);
    return true;
  });
});

test('keepalived: conditional "@ID" lines (keepalived -i) are refused with file:line, never read or dropped silently', () => {
  const text = `@high net_namespace high
virtual_server 198.18.1.100 80 {
  lb_algo rr
@^low  lb_algo wlc
  real_server 198.18.2.11 80 {
  }
}
`;
  assert.throws(() => parseKeepalivedText(text, 'ka.conf'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.deepEqual(e.message.split('\n').map((l) => l.replace(/: conditional configuration lines .*$/, '')), ['ka.conf:1: @high', 'ka.conf:4: @^low']);
    assert.match(e.message, /keepalived -i CONFIG_ID/);
    return true;
  });
});

test('keepalived: includes (globs, relative to the including file) and errors naming the included file', () => {
  const dir = mkdtempSync(join(tmpdir(), 'tsvs-ka-'));
  try {
    mkdirSync(join(dir, 'conf.d'));
    writeFileSync(join(dir, 'keepalived.conf'), 'global_defs {\n  router_id a\n}\ninclude conf.d/*.conf\n');
    writeFileSync(join(dir, 'conf.d', 'a.conf'), 'virtual_server 198.18.1.100 80 {\n  lb_kind DR\n  real_server 198.18.1.11 80 {\n    TCP_CHECK {\n    }\n  }\n}\n');
    writeFileSync(join(dir, 'conf.d', 'b.conf'), '# second\nvirtual_server 198.18.1.101 443 {\n  lb_kind DR\n  real_server 198.18.1.12 443 {\n  }\n}\n');
    const { config } = loadKeepalivedFile(join(dir, 'keepalived.conf'));
    assert.deepEqual(config.services.map((s) => `${s.address}:${s.port}`), ['198.18.1.100:80', '198.18.1.101:443']);
    assert.equal(config.services[0]!.realservers[0]!.check[0]!.type, 'tcp');

    writeFileSync(join(dir, 'conf.d', 'b.conf'), '\nvirtual_server 198.18.1.101 443 {\n  lb_kind DR\n  real_server 198.18.1.12 443 {\n    HTTP_GET {\n    }\n  }\n');
    assert.throws(() => loadKeepalivedFile(join(dir, 'keepalived.conf')), (e: unknown) => {
      const msg = (e as Error).message;
      assert.match(msg, /conf\.d\/b\.conf:5: HTTP_GET needs at least one url/);
      assert.match(msg, /conf\.d\/b\.conf:\d+: missing "}"/);
      return true;
    });
    writeFileSync(join(dir, 'keepalived.conf'), 'include missing.conf\n');
    assert.throws(() => loadKeepalivedFile(join(dir, 'keepalived.conf')), /keepalived\.conf:1: include missing\.conf: cannot read .*ENOENT/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('keepalived: schema errors point at the virtual_server line; duplicates are refused', () => {
  assert.throws(
    () => parseKeepalivedText('\n\nvirtual_server 198.18.1.100 0 {\n  real_server 198.18.2.11 80 {\n  }\n}\n', 'k.conf'),
    /k\.conf:3: Zero port specified for non-persistent service/,
  );
  assert.throws(
    () => parseKeepalivedText('virtual_server 198.18.1.100 80 {\n}\nvirtual_server 198.18.1.100 80 {\n}\n', 'k.conf'),
    /k\.conf:3: .*already defined at k\.conf:1/,
  );
  assert.throws(() => parseKeepalivedText('virtual_server 2001:db8::1 80 {\n}\n', 'k.conf'), /k\.conf:1: .*IPv6/);
});

test('keepalived: hex payloads and format detection', () => {
  assert.equal(keepalivedHex(['Ab12f', '3', '456'], false), 'ab120f034506');
  assert.equal(keepalivedHex(['zz'], false), null);
  assert.equal(keepalivedHex(['0x1'], true), '0x01');
  assert.equal(looksLikeKeepalived('/etc/keepalived/keepalived.conf', ''), true);
  assert.equal(looksLikeKeepalived('tsvs.yaml', 'services: []\n'), false);
  assert.equal(looksLikeKeepalived('lb.cfg', 'virtual_server 1.2.3.4 80 {\n}\n'), true);
});

test('keepalived: lvs_sync_daemon options are read as keepalived reads them, bad ones refused with their line', () => {
  const bad = `global_defs {
  lvs_sync_daemon eth0
  lvs_sync_daemon eth1 inst VI_1 id 300
}
`;
  assert.throws(() => parseKeepalivedText(bad, 'ka.conf'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /ka\.conf:2: lvs_sync_daemon: name the VRRP instance/);
    assert.match(e.message, /ka\.conf:3: lvs_sync_daemon id: bad value "300"/);
    return true;
  });
  const more = `global_defs {
  lvs_sync_daemon eth0 inst VI_1 maxlen 0 group 10.0.0.1 frob
}
`;
  assert.throws(() => parseKeepalivedText(more, 'ka.conf'), (e: unknown) => {
    assert.ok(e instanceof ConfigError);
    assert.match(e.message, /ka\.conf:2: lvs_sync_daemon maxlen: bad value "0"/);
    assert.match(e.message, /lvs_sync_daemon group address 10\.0\.0\.1 is not multicast/);
    assert.match(e.message, /Unknown option frob specified for lvs_sync_daemon/);
    return true;
  });
});

/** Whether this build reads vrrp_instance (VRRP in tsvsd); the sync daemon's instance lookup needs it. */
const vrrpRead = (() => {
  try {
    parseKeepalivedText('vrrp_instance VI_1 {\n  state BACKUP\n  interface eth1\n  virtual_router_id 51\n  virtual_ipaddress {\n    198.18.1.100/32\n  }\n}\n', 'probe.conf');
    return true;
  } catch (e) {
    return !/VRRP is not supported/.test((e as Error).message);
  }
})();

test('keepalived: lvs_sync_daemon follows its instance: the instance\'s state gives the role, its VRID the syncid', { skip: !vrrpRead && 'this build does not read vrrp_instance yet' }, () => {
  const text = (state: string, extra: string) => `global_defs {
  lvs_sync_daemon eth1 VI_1 ${extra}
}
vrrp_instance VI_1 {
  state ${state}
  interface eth1
  virtual_router_id 51
  priority 150
  virtual_ipaddress {
    198.18.1.100/32
  }
}
`;
  const a = parseKeepalivedText(text('MASTER', ''), 'ka.conf').config;
  assert.deepEqual(a.sync_daemon, [{ state: 'master', interface: 'eth1', syncid: 51, maxlen: 0, vrrp_instance: 'VI_1' }]);
  const b = parseKeepalivedText(text('BACKUP', 'id 9 maxlen 1400 port 9000 ttl 3 group 239.1.1.1'), 'ka.conf').config;
  assert.deepEqual(b.sync_daemon, [{ state: 'backup', interface: 'eth1', syncid: 9, maxlen: 1400, port: 9000, ttl: 3, group: '239.1.1.1', vrrp_instance: 'VI_1' }]);
});
