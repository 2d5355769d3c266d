// DPVS's ipvsadm extension for FullNAT in tsvsadm: -b/--fullnat on -a/-e, -P/-Q/-G with -z/-F, FullNat in -L -n, -S/-R round trip.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { responder } from './responder.ts';
import { parseArgs, toRequest, type ParseOutcome } from '../../src/cli/tsvsadm/args.ts';
import type { Resolver } from '../../src/cli/tsvsadm/resolve.ts';
import { run } from '../../src/cli/tsvsadm/main.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { MemoryPort } from '../../src/io/memory.ts';
import { validateConfig } from '../../src/ctl/config.ts';

const resolver: Resolver = { async hostToAddr() { return null; }, serviceToPort() { return null; } };
const parse = (line: string): Promise<ParseOutcome> => parseArgs(line.split(' '), { program: 'tsvsadm', resolver, tsvsVersion: '9.9.9' });
async function req(line: string) {
  const o = await parse(line);
  assert.equal(o.kind, 'command', JSON.stringify(o));
  return toRequest((o as Extract<ParseOutcome, { kind: 'command' }>).parsed);
}
async function fails(line: string, message: string) {
  assert.deepEqual(await parse(line), { kind: 'exit', code: 2, stdout: '', stderr: message + '\n' }, line);
}

test('-b is --fullnat after -a/-e (DPVS) and still --sched-flags after -A/-E (ipvsadm 1.31)', async () => {
  const a = await req('-a -t 198.18.1.100:80 -r 198.19.5.11:8080 -b -w 2');
  assert.equal(a?.op, 'add-server');
  assert.deepEqual(a?.op === 'add-server' ? [a.dest.fwd, a.dest.port, a.dest.weight] : null, ['fullnat', 8080, 2], 'FullNAT may change the port, as NAT');
  const e = await req('-e -t 198.18.1.100:80 -r 198.19.5.11:8080 --fullnat');
  assert.deepEqual(e?.op === 'edit-server' ? e.dest.fwd : null, 'fullnat');
  const s = await req('-A -t 198.18.1.100:80 -s sh -b sh-port');
  assert.deepEqual(s && 'config' in s ? s.config.schedFlags : null, 2);
  await fails('-a -t 198.18.1.100:80 -r 198.19.5.11 -b -m', "multiple 'forwarding-method' options specified");
});

test('-P/-Q/-G: local addresses of a service, with ipvsadm-style refusals', async () => {
  assert.deepEqual(await req('-P -t 198.18.1.100:80 -z 198.18.2.50 -F nat0'), {
    op: 'laddr-add', service: { type: 'tcp', addr: '198.18.1.100', port: 80 }, laddr: { addr: '198.18.2.50', ifname: 'nat0' },
  });
  assert.deepEqual(await req('--del-laddr -u 198.18.1.100:53 --laddr 198.18.2.50'), {
    op: 'laddr-del', service: { type: 'udp', addr: '198.18.1.100', port: 53 }, laddr: { addr: '198.18.2.50', ifname: '' },
  });
  assert.deepEqual(await req('-G'), { op: 'laddr-list' });
  assert.deepEqual(await req('--get-laddr -t 198.18.1.100:80'), { op: 'laddr-list', service: { type: 'tcp', addr: '198.18.1.100', port: 80 } });
  await fails('-P -t 198.18.1.100:80', "You need to supply the 'laddr' option for the 'add-laddr' command");
  await fails('-P -z 198.18.2.50', "You need to supply the 'service-address' option for the 'add-laddr' command");
  await fails('-P -t 198.18.1.100:80 -z nothere', 'illegal local address');
  await fails('-G -z 198.18.2.50', "Illegal 'laddr' option with the 'get-laddr' command");
  await fails('-a -t 198.18.1.100:80 -r 198.19.5.11 -z 198.18.2.50', "Illegal 'laddr' option with the 'add-server' command");
});

test('against a Dataplane: -L -n shows FullNat, -G lists LIPs as DPVS does, -S then -R restores the same table', async () => {
  const dp = new Dataplane([new MemoryPort('lan0'), new MemoryPort('nat0')], validateConfig({
    interfaces: ['lan0', 'nat0'], addresses: ['198.18.1.2/24@lan0', '198.18.2.1/24@nat0'], routes: ['198.19.5.0/24=198.18.2.254'],
  }), () => {});
  const { path, done } = await responder((req) => dp.handle(req));
  const adm = async (line: string, stdin = '') => {
    let out = '';
    let err = '';
    const code = await run([...line.split(' '), '--socket', path], { stdout: (s) => (out += s), stderr: (s) => (err += s), readStdin: async () => stdin, env: {} });
    return { code, out, err };
  };
  try {
    assert.equal((await adm('-A -t 198.18.1.100:80 -s rr')).code, 0);
    assert.equal((await adm('-P -t 198.18.1.100:80 -z 198.18.2.50 -F nat0')).code, 0);
    assert.equal((await adm('-P -t 198.18.1.100:80 -z 198.18.2.51')).code, 0);
    assert.deepEqual(await adm('-P -t 198.18.1.100:80 -z 198.18.2.51'), { code: 255, out: '', err: 'local address already exists\n' });
    assert.deepEqual(await adm('-P -t 198.18.1.100:81 -z 198.18.2.51'), { code: 255, out: '', err: 'No such service\n' });
    assert.equal((await adm('-a -t 198.18.1.100:80 -r 198.19.5.11:8080 -b')).code, 0);
    assert.equal((await adm('-a -t 198.18.1.100:80 -r 198.19.5.12:8080 -b -w 3')).code, 0);
    const l = await adm('-L -n');
    assert.equal(l.code, 0);
    assert.ok(l.out.endsWith('TCP  198.18.1.100:80 rr\n'
      + '  -> 198.19.5.11:8080             FullNat 1      0          0         \n'
      + '  -> 198.19.5.12:8080             FullNat 3      0          0         \n'), l.out);
    const g = await adm('-G');
    assert.deepEqual(g, {
      code: 0,
      err: '',
      out: 'VIP:VPORT            TOTAL    SNAT_IP              CONFLICTS  CONNS     \n'
        + '198.18.1.100:80      2        \n'
        + '                              198.18.2.50          0          0         \n'
        + '                              198.18.2.51          0          0         \n',
    });
    const saved = await adm('-S -n');
    assert.equal(saved.out,
      '-A -t 198.18.1.100:80 -s rr\n'
      + '-P -t 198.18.1.100:80 -z 198.18.2.50 -F nat0\n'
      + '-P -t 198.18.1.100:80 -z 198.18.2.51\n'
      + '-a -t 198.18.1.100:80 -r 198.19.5.11:8080 -b -w 1\n'
      + '-a -t 198.18.1.100:80 -r 198.19.5.12:8080 -b -w 3\n');
    assert.equal((await adm('-C')).code, 0);
    assert.equal(dp.director.isLocal(0xc6120232), false, 'LIPs go with their service');
    assert.equal((await adm('-R', saved.out)).code, 0);
    assert.equal((await adm('-S -n')).out, saved.out);
    // PROXY protocol per service (DPVS's --proxy-protocol): listed as ppv2, saved, refused when insecure.
    assert.equal((await adm('-E -t 198.18.1.100:80 -s rr --proxy-protocol v2')).code, 0);
    assert.match((await adm('-L -n')).out, /\nTCP  198\.18\.1\.100:80 rr ppv2\n/);
    assert.match((await adm('-S -n')).out, /^-A -t 198\.18\.1\.100:80 -s rr --proxy-protocol v2\n/);
    assert.equal((await adm('-E -t 198.18.1.100:80 -s rr --proxy-protocol v2-insecure')).code, 2);
    assert.equal((await adm('-E -t 198.18.1.100:80 -s rr')).code, 0);
    assert.doesNotMatch((await adm('-L -n')).out, /pp/);
    assert.equal((await adm('-Q -t 198.18.1.100:80 -z 198.18.2.51')).code, 0);
    assert.deepEqual(await adm('-Q -t 198.18.1.100:80 -z 198.18.2.51'), { code: 255, out: '', err: 'no such local address\n' });
  } finally {
    done();
  }
});
