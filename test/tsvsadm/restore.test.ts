// -S text read back by -R's parser yields the same requests; -R's line-splitting quirks; run()'s statuses and messages.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import type { ListResult, RequestBody } from '../../src/ctl/protocol.ts';
import { IpvsError } from '../../src/ctl/errors.ts';
import { parseArgs, toRequest } from '../../src/cli/tsvsadm/args.ts';
import { restoreLines } from '../../src/cli/tsvsadm/restore.ts';
import { formatSave } from '../../src/cli/tsvsadm/save.ts';
import { run, type Director } from '../../src/cli/tsvsadm/main.ts';
import type { Resolver } from '../../src/cli/tsvsadm/resolve.ts';

const resolver: Resolver = { hostToAddr: async () => null, serviceToPort: () => null };
const Z = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
const ZR = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };
const D = { tunType: 'ipip', tunPort: 0, tunCsum: 'nocsum', activeConns: 0, inactConns: 0, persistConns: 0, stats: Z, rates: ZR } as const;
const S = { persistent: false, timeout: 0, netmask: '255.255.255.255', onePacket: false, schedFlags: 0, pe: '', stats: Z, rates: ZR } as const;

const LIST: ListResult = {
  version: '1.2.1',
  size: 4096,
  services: [
    { ...S, key: { type: 'tcp', addr: '198.18.1.100', port: 80 }, scheduler: 'wrr', dests: [
      { ...D, addr: '198.18.2.11', port: 8080, fwd: 'masq', weight: 3, uThreshold: 50, lThreshold: 5 },
      { ...D, addr: '198.18.1.11', port: 80, fwd: 'route', weight: 1, uThreshold: 0, lThreshold: 0 },
    ] },
    { ...S, key: { type: 'udp', addr: '198.18.1.100', port: 0 }, scheduler: 'sh', persistent: true, timeout: 600, netmask: '255.255.0.0', schedFlags: 3, dests: [
      { ...D, addr: '198.19.0.11', port: 0, fwd: 'tunnel', weight: 0, uThreshold: 0, lThreshold: 0 },
    ] },
    { ...S, key: { type: 'fwmark', fwmark: 9 }, scheduler: 'rr', onePacket: true, dests: [] },
  ],
};

test('-S text parsed by the -R path gives the requests that rebuild the table (without thresholds)', async () => {
  const text = formatSave(LIST, null);
  const reqs: (RequestBody | null)[] = [];
  for (const line of restoreLines(text)) {
    const o = await parseArgs(line, { program: 'tsvsadm', resolver, tsvsVersion: '0', restoring: true });
    assert.equal(o.kind, 'command', line.join(' '));
    if (o.kind === 'command') reqs.push(toRequest(o.parsed));
  }
  const base = { persistent: false, timeout: 0, netmask: '255.255.255.255', onePacket: false, schedFlags: 0, pe: '' };
  const dd = { uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: 'nocsum' };
  const k1 = { type: 'tcp', addr: '198.18.1.100', port: 80 } as const;
  const k2 = { type: 'udp', addr: '198.18.1.100', port: 0 } as const;
  assert.deepEqual(reqs, [
    { op: 'add-service', service: k1, config: { ...base, scheduler: 'wrr' } },
    { op: 'add-server', service: k1, dest: { ...dd, addr: '198.18.1.11', port: 80, fwd: 'route', weight: 1 } },
    { op: 'add-server', service: k1, dest: { ...dd, addr: '198.18.2.11', port: 8080, fwd: 'masq', weight: 3 } },
    { op: 'add-service', service: k2, config: { ...base, scheduler: 'sh', persistent: true, timeout: 600, netmask: '255.255.0.0', schedFlags: 3 } },
    { op: 'add-server', service: k2, dest: { ...dd, addr: '198.19.0.11', port: 0, fwd: 'tunnel', weight: 0 } },
    { op: 'add-service', service: { type: 'fwmark', fwmark: 9 }, config: { ...base, scheduler: 'rr', onePacket: true } },
  ]);
});

test('restore lines: "ipvsadm" tokens dropped, blanks and CR split, # kept, unterminated tail with 2+ blanks dropped', () => {
  assert.deepEqual(restoreLines('ipvsadm -A -t 1.2.3.4:80\r\n\n  \t\n-C\n'), [['-A', '-t', '1.2.3.4:80'], ['-C']]);
  assert.deepEqual(restoreLines('# a comment\n-C # trailing'), [['#', 'a', 'comment'], ['-C', '#', 'trailing']]);
  assert.deepEqual(restoreLines('-C\n-Z '), [['-C'], ['-Z']]);
  assert.deepEqual(restoreLines('-C\n-Z  '), [['-C']]);
  assert.deepEqual(restoreLines('ipvsadm\n'), []);
});

/** A director that answers each op from a table of canned results or errors (no state). */
function canned(answers: Partial<Record<string, unknown>>, seen: string[] = []): () => Director {
  return () => ({
    async request(body) {
      seen.push(body.op);
      const a = answers[body.op];
      if (a instanceof IpvsError) throw a;
      return a as never;
    },
    close() {},
  });
}

async function tsvsadm(args: string[], answers: Partial<Record<string, unknown>>, stdin = '', seen: string[] = []) {
  let out = '';
  let err = '';
  const code = await run(args, { stdout: (s) => (out += s), stderr: (s) => (err += s), readStdin: async () => stdin, env: {} }, {
    resolver,
    connect: canned(answers, seen),
    names: async () => ({ host: () => null, service: () => null }),
  });
  return { code, out, err };
}

test('director refusals print ipvsadm texts for the operation and exit 255; listing errors exit 1', async () => {
  assert.deepEqual(await tsvsadm(['-A', '-t', '1.2.3.4:80'], { 'add-service': new IpvsError('EEXIST', 'add-service') }), {
    code: 255, out: '', err: 'Service already exists\n',
  });
  assert.deepEqual(await tsvsadm(['-a', '-t', '1.2.3.4:80', '-r', '5.6.7.8'], { 'add-server': new IpvsError('ESRCH', 'add-server') }), {
    code: 255, out: '', err: 'Service not defined\n',
  });
  assert.deepEqual(await tsvsadm(['-d', '-t', '1.2.3.4:80', '-r', '5.6.7.8'], { 'delete-server': new IpvsError('ENOENT', 'delete-server') }), {
    code: 255, out: '', err: 'No such destination\n',
  });
  assert.deepEqual(await tsvsadm(['-a', '-t', '1.2.3.4:80', '-r', '5.6.7.8', '-y', '5'], { 'add-server': new IpvsError('ERANGE', 'add-server') }), {
    code: 255, out: '', err: 'Numerical result out of range\n',
  });
  assert.deepEqual(await tsvsadm(['-L', '-n', '-t', '1.2.3.4:80'], { list: new IpvsError('ESRCH', 'list') }), { code: 1, out: '', err: 'No such service\n' });
  assert.deepEqual(await tsvsadm(['-L', '--timeout'], { 'get-timeout': new IpvsError('EPERM', 'timeout') }), { code: 1, out: '', err: '' });
  assert.deepEqual(await tsvsadm(['-L', '--timeout'], { 'get-timeout': { tcp: 900, tcpfin: 120, udp: 300 } }), {
    code: 0, out: 'Timeout (tcp tcpfin udp): 900 120 300\n', err: '',
  });
  const seen: string[] = [];
  assert.equal((await tsvsadm(['-A', '-t', '1.2.3.4:80', '-w', '1'], {}, '', seen)).code, 2);
  assert.deepEqual(seen, [], 'a refused command never reaches the director');
});

test('--json prints the listing data, sorted; --json is refused on non-listing commands', async () => {
  const r = await tsvsadm(['-L', '-n', '--json'], { list: LIST });
  assert.equal(r.code, 0);
  const j = JSON.parse(r.out) as ListResult;
  assert.deepEqual(j.services[0]!.dests.map((d) => d.addr), ['198.18.1.11', '198.18.2.11']);
  assert.deepEqual(await tsvsadm(['-C', '--json'], {}), { code: 2, out: '', err: "Illegal 'json' option with the 'flush' command\n" });
});

test('-R: director errors continue, the last line decides the status, a parse error aborts with 2', async () => {
  const seen: string[] = [];
  const r1 = await tsvsadm(['-R'], { 'add-service': new IpvsError('EEXIST', 'add-service'), flush: null }, '-A -t 1.2.3.4:80\n-C\n', seen);
  assert.deepEqual(r1, { code: 0, out: '', err: 'Service already exists\n' });
  assert.deepEqual(seen, ['add-service', 'flush']);
  const r2 = await tsvsadm(['-R'], { flush: null, 'add-service': new IpvsError('EEXIST', 'add-service') }, '-C\n-A -t 1.2.3.4:80\n');
  assert.equal(r2.code, 255);
  const seen3: string[] = [];
  const r3 = await tsvsadm(['-R'], { flush: null }, '-C\n-A -t 1.2.3.4:0\n-C\n', seen3);
  assert.deepEqual(r3, { code: 2, out: '', err: 'Zero port specified for non-persistent service\n' });
  assert.deepEqual(seen3, ['flush']);
  const r4 = await tsvsadm(['-R'], { flush: null }, '# comment\n-C\n');
  assert.deepEqual(r4, { code: 255, out: '', err: "Try `tsvsadm -h' or 'tsvsadm --help' for more information.\n" });
});
