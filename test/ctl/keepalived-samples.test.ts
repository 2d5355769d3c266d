// keepalived's own sample configurations (Debian's keepalived package) through tsvsd's --config path: each is read right or refused with file:line.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { ConfigError, type Config } from '../../src/ctl/config.ts';
import { parseKeepalivedText } from '../../src/ctl/keepalived.ts';
import { checkServices } from '../../src/ctl/reload.ts';
import { parseTsvsdArgs } from '../../src/cli/tsvsd-args.ts';

const SAMPLES = '/usr/share/doc/keepalived/samples';
const files = existsSync(SAMPLES) ? readdirSync(SAMPLES).filter((f) => f.startsWith('keepalived.conf')).sort() : [];
const skip = files.length === 0 && `no keepalived samples in ${SAMPLES} (apt-get install keepalived; scripts/ensure-tools.sh does it)`;

/** What tsvsd does with `--config FILE`: parse, validate, and the services' pre-check a reload runs too. */
function load(file: string): Config {
  // The samples name eth0..eth3 (VRRP, track_interface): let the director own them all.
  const o = parseTsvsdArgs(['--config', file, '--interface', 'eth0', '--interface', 'eth1', '--interface', 'eth2', '--interface', 'eth3'], {});
  checkServices(o.config);
  return o.config;
}

/** The words of a keepalived.conf line, comments (# or ! starting a word) and braces dropped. */
function words(line: string): string[] {
  const out: string[] = [];
  for (const w of line.replace(/[{}]/g, ' $& ').split(/\s+/)) {
    if (w === '') continue;
    if (w.startsWith('#') || w.startsWith('!')) break;
    out.push(w.replace(/^"(.*)"$/, '$1'));
  }
  return out;
}

interface ExpectRs { addr: string; port: number | undefined; weight?: number; method?: string; checks: { type: string; port?: number; timeout?: number; delay?: number }[]; delay?: number }
interface ExpectVs { addr: string; port: number; protocol?: string; sched?: string; method?: string; persistence?: number; delay?: number; rs: ExpectRs[] }

const CHECKERS = new Set(['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'UDP_CHECK', 'PING_CHECK']);

/**
 * An independent, deliberately small reading of the virtual_server blocks of a sample — the fields
 * whose meaning is plain from the text — to hold the real reader's result against.
 */
function expected(text: string): ExpectVs[] {
  const out: ExpectVs[] = [];
  const stack: string[] = [];
  let vs: ExpectVs | undefined;
  let rs: ExpectRs | undefined;
  let chk: ExpectRs['checks'][number] | undefined;
  for (const line of text.split('\n')) {
    const w = words(line);
    const opens = line.split('#')[0]!.split('!')[0]!.includes('{');
    const top = stack[stack.length - 1];
    if (w.length && w[0] !== '}') {
      if (stack.length === 0 && w[0] === 'virtual_server') {
        vs = { addr: w[1]!, port: Number(w[2]), rs: [] };
        out.push(vs);
      } else if (top === 'virtual_server' && vs) {
        const k = w[0]!;
        if (k === 'real_server') {
          rs = { addr: w[1]!, port: w[2] === '{' || w[2] === undefined ? undefined : Number(w[2]), checks: [] };
          vs.rs.push(rs);
        } else if (k === 'lb_algo' || k === 'lvs_sched') vs.sched = w[1];
        else if (k === 'lb_kind' || k === 'lvs_method') vs.method = w[1]!.toLowerCase();
        else if (k === 'protocol') vs.protocol = w[1]!.toLowerCase();
        else if (k === 'persistence_timeout') vs.persistence = Number(w[1]);
        else if (k === 'delay_loop') vs.delay = Number(w[1]);
      } else if (top === 'real_server' && rs) {
        const k = w[0]!;
        if (CHECKERS.has(k)) {
          chk = { type: k };
          rs.checks.push(chk);
        } else if (k === 'weight') rs.weight = Number(w[1]);
        else if (k === 'lb_kind' || k === 'lvs_method') rs.method = w[1]!.toLowerCase();
        else if (k === 'delay_loop') rs.delay = Number(w[1]);
      } else if (top !== undefined && CHECKERS.has(top) && chk) {
        if (w[0] === 'connect_port') chk.port = Number(w[1]);
        else if (w[0] === 'connect_timeout') chk.timeout = Number(w[1]);
        else if (w[0] === 'delay_loop') chk.delay = Number(w[1]);
      }
    }
    if (opens) stack.push(w.length && w[0] !== '{' ? w[0]! : '');
    for (const c of line.split('#')[0]!.split('!')[0]!) if (c === '}') stack.pop();
  }
  return out;
}

const TYPES: Record<string, string> = { TCP_CHECK: 'tcp', HTTP_GET: 'http', SSL_GET: 'https', MISC_CHECK: 'misc', UDP_CHECK: 'udp', PING_CHECK: 'ping' };

function checkAccepted(file: string, text: string, config: Config): void {
  const want = expected(text);
  assert.equal(config.services.length, want.length, `${file}: one service per virtual_server`);
  for (const v of want) {
    const s = config.services.find((x) => x.address === v.addr && x.port === v.port);
    assert.ok(s, `${file}: virtual_server ${v.addr} ${v.port} was read`);
    assert.equal(s.protocol, v.protocol ?? 'tcp', `${file}: ${v.addr}:${v.port} protocol`);
    assert.equal(s.scheduler, v.sched ?? 'wlc', `${file}: ${v.addr}:${v.port} scheduler`);
    if (v.persistence !== undefined) assert.equal(s.persistent, v.persistence, `${file}: ${v.addr}:${v.port} persistence`);
    else assert.ok(!s.persistent, `${file}: ${v.addr}:${v.port} not persistent`);
    assert.deepEqual(s.realservers.map((r) => `${r.address}:${r.port ?? ''}`), v.rs.map((r) => `${r.addr}:${r.port ?? ''}`), `${file}: real servers in order`);
    v.rs.forEach((er, i) => {
      const r = s.realservers[i]!;
      const where = `${file}: real_server ${er.addr} ${er.port ?? ''}`;
      assert.equal(r.weight, er.weight ?? 1, `${where} weight`);
      assert.equal(r.method, er.method ?? v.method ?? 'nat', `${where} method`);
      // HTTP_GET/SSL_GET become one check per url; the others one check each.
      const types = (r.check ?? []).map((c) => c.type);
      assert.deepEqual([...new Set(types)], [...new Set(er.checks.map((c) => TYPES[c.type]!))], `${where} checkers`);
      for (const ec of er.checks) {
        for (const c of (r.check ?? []).filter((x) => x.type === TYPES[ec.type])) {
          if (ec.port !== undefined) assert.equal(c.port, ec.port, `${where} ${ec.type} connect_port`);
          else assert.equal(c.port, undefined, `${where} ${ec.type} probes the real server's port`);
          if (ec.timeout !== undefined) assert.equal(c.timeout, ec.timeout, `${where} ${ec.type} connect_timeout`);
          assert.equal(c.interval, ec.delay ?? er.delay ?? v.delay ?? 60, `${where} ${ec.type} delay_loop`);
        }
      }
    });
  }
}

/** For each line (1-based index), the keywords that can name it: its own first word, then those of the blocks around it. */
function keywordsByLine(text: string): string[][] {
  const out: string[][] = [[]];
  const stack: string[] = [];
  for (const line of text.split('\n')) {
    const w = words(line);
    out.push([...(w.length && w[0] !== '{' && w[0] !== '}' ? [w[0]!] : []), ...[...stack].reverse()]);
    for (const c of line.split('#')[0]!.split('!')[0]!) {
      if (c === '{') stack.push(w.length && w[0] !== '{' ? w[0]! : '');
      else if (c === '}') stack.pop();
    }
  }
  return out;
}

function checkRefused(file: string, text: string, e: ConfigError): void {
  const src = text.split('\n');
  const keys = keywordsByLine(text);
  const lines = e.message.split('\n');
  assert.ok(lines.length > 0 && lines.every((l) => l.length > 0), `${file}: a message per refusal`);
  for (const l of lines) {
    const m = /^(.+?):(\d+): (.+)$/.exec(l);
    assert.ok(m, `${file}: "${l}" carries file:line`);
    // Includes name their own file; these samples have none, so it is the sample itself.
    assert.equal(m[1], file, `${file}: "${l}" names the file`);
    const n = Number(m[2]);
    assert.ok(n >= 1 && n <= src.length, `${file}: line ${n} exists`);
    // A list entry (an address in virtual_ipaddress, a host in a group) is named by its block's keyword.
    const named = keys[n]!.filter((k) => k !== '');
    assert.ok(named.length > 0, `${file}:${n} is a line with a keyword or inside a block`);
    assert.ok(named.some((k) => m[3]!.includes(k)), `${file}: "${l}" names the keyword of its line or block (${named.join(', ')})`);
  }
}

/**
 * The LVS part of a sample: only its top-level virtual_server and global_defs blocks, every other line
 * blanked so that line numbers stay the sample's own. What the reader must get right whatever else
 * (VRRP, static routes...) the file holds or tsvs comes to support.
 */
function lvsPart(text: string): string {
  const out: string[] = [];
  let depth = 0;
  let keep = false;
  for (const line of text.split('\n')) {
    const w = words(line);
    if (depth === 0 && w.length) keep = w[0] === 'virtual_server' || w[0] === 'global_defs';
    out.push(depth === 0 && !w.length ? line : keep ? line : '');
    const code = line.split('#')[0]!.split('!')[0]!;
    for (const c of code) {
      if (c === '{') depth++;
      else if (c === '}') depth--;
    }
  }
  return out.join('\n');
}

/** Loads `file` as tsvsd would; checks the result or the refusal; returns which it was. */
function verdict(file: string, text: string, summary: string[], label: string): 'accepted' | 'refused' {
  let config: Config;
  try {
    config = load(file);
  } catch (e) {
    if (!(e instanceof ConfigError)) assert.fail(`${label}: ${(e as Error).constructor.name} instead of a ConfigError: ${(e as Error).stack}`);
    checkRefused(file, text, e);
    summary.push(`${label}: refused (${e.message.split('\n').length} line(s), first: ${e.message.split('\n')[0]!.slice(file.length + 1)})`);
    return 'refused';
  }
  checkAccepted(label, text, config);
  summary.push(`${label}: accepted, ${config.services.length} service(s), ${config.services.reduce((a, s) => a + s.realservers.length, 0)} real server(s)`);
  return 'accepted';
}

test('keepalived samples (Debian keepalived): each is read right through tsvsd --config, or refused with file:line naming the keyword', { skip }, () => {
  const n = { accepted: 0, refused: 0 };
  const lvs = { accepted: 0, refused: 0 };
  const summary: string[] = [];
  const tmp = mkdtempSync(join(tmpdir(), 'tsvs-kasamples-'));
  try {
    for (const f of files) {
      const file = join(SAMPLES, f);
      const text = readFileSync(file, 'utf8');
      n[verdict(file, text, summary, f)]++;
      if (!/^\s*virtual_server\b/m.test(text)) continue;
      // The same file with only its LVS blocks (same name, same line numbers) in a scratch directory.
      const part = lvsPart(text);
      const copy = join(tmp, f);
      writeFileSync(copy, part);
      lvs[verdict(copy, part, summary, `${f} (LVS part)`)]++;
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  console.log(`# keepalived samples: ${files.length} files, ${n.accepted} accepted, ${n.refused} refused; `
    + `their LVS parts: ${lvs.accepted} accepted, ${lvs.refused} refused\n${summary.map((s) => `#   ${s}`).join('\n')}`);
  assert.equal(n.accepted + n.refused, files.length);
  // Samples that are only LVS exist and must load: the reader is exercised, not just its refusals.
  assert.ok(n.accepted > 0 && lvs.accepted >= n.accepted, 'some samples are accepted, and so are their LVS parts');
});

test('keepalived samples, mangled (cuts, stray braces, quotes, huge numbers, includes): a ConfigError with file:line or a config, never a crash', { skip }, () => {
  const texts = files.map((f) => readFileSync(join(SAMPLES, f), 'utf8'));
  const bits = ['{', '}', '"', "'", '\n', ' ', '#', '!', '@x ', '\\', '0', '-1', '999999999999', '1e400', 'NaN', 'include *\n',
    'virtual_server ', 'real_server 198.18.2.1 80 {', 'url {', 'TCP_CHECK {', '__proto__ ', 'constructor '];
  const edit = fc.record({ at: fc.nat(), op: fc.constantFrom('cut', 'insert', 'truncate'), len: fc.integer({ min: 1, max: 20 }), bit: fc.constantFrom(...bits) });
  // An empty directory for the file, so an inserted include reads nothing of ours.
  const tmp = mkdtempSync(join(tmpdir(), 'tsvs-kafuzz-'));
  const name = join(tmp, 'keepalived.conf');
  try {
    fc.assert(
      fc.property(fc.nat(), fc.array(edit, { minLength: 1, maxLength: 4 }), (which, edits) => {
        let t = texts[which % texts.length]!;
        for (const e of edits) {
          const p = e.at % (t.length + 1);
          t = e.op === 'cut' ? t.slice(0, p) + t.slice(p + e.len) : e.op === 'insert' ? t.slice(0, p) + e.bit + t.slice(p) : t.slice(0, p);
        }
        try {
          parseKeepalivedText(t, name);
        } catch (e) {
          if (!(e instanceof ConfigError)) throw e;
          for (const l of e.message.split('\n')) assert.match(l, /^\/.+:\d+: \S/, 'every refusal line carries file:line');
        }
      }),
      { numRuns: 3000, seed: 16 },
    );
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
});
