// Reads the LVS part of a keepalived.conf (virtual_server, real_server, checkers) into tsvsd's typed Config, reporting everything else by file and line.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { dirname, resolve as resolvePath, basename, join } from 'node:path';
import { isIP } from 'node:net';
import { ConfigError, configSchema, attachWhere, type Config } from './config.ts';
import { readVrrpGlobal, readVrrpInstance, readVrrpSyncGroup, type VrrpGlobals } from './keepalived-vrrp.ts';

/** What the reader produced: the config, and the keywords it accepted but ignored ("file:line: keyword: why"). */
export interface KeepalivedResult {
  config: Config;
  ignored: string[];
}

interface Token {
  text: string;
  quoted: boolean;
  file: string;
  line: number;
}

interface Node {
  key: Token;
  args: Token[];
  children: Node[] | null;
}

const MAX_INCLUDE_DEPTH = 16;
const SCHEDULERS = new Set(['rr', 'wrr', 'lc', 'wlc', 'lblc', 'sh', 'mh', 'dh', 'fo', 'ovf', 'lblcr', 'sed', 'nq', 'twos']);

/** keepalived's defaults (man keepalived.conf), applied so a keepalived user's file behaves as before. */
export const KEEPALIVED_DEFAULTS = {
  delayLoop: 60,
  connectTimeout: 5,
  retry: 1,
  miscRetry: 0,
  delayBeforeRetry: 1,
  httpDelayBeforeRetry: 3,
  persistenceTimeout: 360,
  scheduler: 'wlc',
  method: 'nat',
} as const;

/** global_defs keys that do not change the LVS table (mail, SNMP, VRRP, process and script settings). */
const GLOBAL_IGNORABLE = new Set([
  'router_id', 'notification_email', 'notification_email_from', 'smtp_server', 'smtp_helo_name', 'smtp_connect_timeout',
  'smtp_alert', 'smtp_alert_vrrp', 'smtp_alert_checker', 'checker_log_all_failures', 'enable_script_security', 'script_user',
  'max_auto_priority', 'min_auto_priority_delay', 'enable_traps', 'snmp_socket', 'enable_snmp_vrrp', 'enable_snmp_checker',
  'enable_snmp_rfc', 'enable_snmp_rfcv2', 'enable_snmp_rfcv3', 'enable_dbus', 'dbus_service_name', 'dynamic_interfaces',
  'process_names', 'process_name', 'vrrp_process_name', 'checker_process_name', 'bfd_process_name', 'instance', 'net_namespace',
  'namespace_with_ipsets', 'use_pid_dir', 'linkbeat_use_polling', 'notify_fifo', 'notify_fifo_script', 'vrrp_notify_fifo',
  'vrrp_notify_fifo_script', 'lvs_notify_fifo', 'lvs_notify_fifo_script', 'checker_priority', 'checker_no_swap',
  'checker_cpu_affinity', 'checker_rt_priority', 'checker_rlimit_rttime', 'vrrp_priority', 'vrrp_no_swap', 'bfd_priority',
  'bfd_no_swap', 'reload_check_config', 'config_save_dir', 'default_interface', 'local_name', 'startup_script',
  'startup_script_timeout', 'shutdown_script', 'shutdown_script_timeout', 'umask', 'data_use_instance', 'tmp_config_directory',
  'script_max_waiting_time', 'disable_local_igmp',
]);

class Reader {
  readonly errors: string[] = [];
  readonly ignored: string[] = [];

  err(t: Token, msg: string): void {
    this.errors.push(`${t.file}:${t.line}: ${msg}`);
  }
  ignore(n: Node, why: string): void {
    this.ignored.push(`${n.key.file}:${n.key.line}: ${n.key.text}: ${why}`);
  }

  // ------------------------------------------------------------------ lexing and includes

  tokenize(text: string, file: string, depth: number): Token[] {
    const out: Token[] = [];
    const lines = text.split(/\r?\n/);
    for (let ln = 0; ln < lines.length; ln++) {
      const lineToks = this.lexLine(lines[ln]!, file, ln + 1);
      if (lineToks.length && !lineToks[0]!.quoted && lineToks[0]!.text.startsWith('@')) {
        // keepalived keeps an "@ID" line only when started with -i ID ("@^ID": unless): tsvsd has no
        // config id, so reading or dropping such a line silently would both guess.
        this.err(lineToks[0]!, `${lineToks[0]!.text}: conditional configuration lines (keepalived -i CONFIG_ID) are not supported by tsvs; keep the lines meant for this director without the @ prefix`);
        continue;
      }
      if (lineToks.length && lineToks[0]!.text === 'include' && !lineToks[0]!.quoted) {
        if (lineToks.length < 2) this.err(lineToks[0]!, 'include needs a file name');
        for (const pat of lineToks.slice(1)) out.push(...this.include(pat, file, depth));
        continue;
      }
      out.push(...lineToks);
    }
    return out;
  }

  private lexLine(line: string, file: string, ln: number): Token[] {
    const toks: Token[] = [];
    let i = 0;
    while (i < line.length) {
      const c = line[i]!;
      if (c === ' ' || c === '\t') {
        i++;
        continue;
      }
      // Comments start with # or ! at the start of a word (so a regex such as a#b survives).
      if (c === '#' || c === '!') break;
      if (c === '{' || c === '}') {
        toks.push({ text: c, quoted: false, file, line: ln });
        i++;
        continue;
      }
      if (c === '"' || c === "'") {
        let j = i + 1;
        let s = '';
        while (j < line.length && line[j] !== c) {
          if (line[j] === '\\' && c === '"' && j + 1 < line.length) {
            s += line[j + 1];
            j += 2;
          } else s += line[j++];
        }
        if (j >= line.length) this.errors.push(`${file}:${ln}: unterminated quoted string`);
        toks.push({ text: s, quoted: true, file, line: ln });
        i = j + 1;
        continue;
      }
      let j = i;
      while (j < line.length && !/[\s{}]/.test(line[j]!)) j++;
      toks.push({ text: line.slice(i, j), quoted: false, file, line: ln });
      i = j;
    }
    return toks;
  }

  private include(pat: Token, from: string, depth: number): Token[] {
    if (depth >= MAX_INCLUDE_DEPTH) {
      this.err(pat, `includes nested deeper than ${MAX_INCLUDE_DEPTH} (a loop?)`);
      return [];
    }
    const full = resolvePath(dirname(from), pat.text);
    let files: string[];
    if (/[*?[]/.test(basename(full))) {
      const dir = dirname(full);
      const re = globToRegExp(basename(full));
      try {
        files = readdirSync(dir).filter((f) => re.test(f)).sort().map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
      } catch (e) {
        this.err(pat, `include ${pat.text}: ${(e as Error).message}`);
        return [];
      }
    } else files = [full];
    const out: Token[] = [];
    for (const f of files) {
      let text: string;
      try {
        text = readFileSync(f, 'utf8');
      } catch (e) {
        this.err(pat, `include ${pat.text}: cannot read ${f}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
        continue;
      }
      out.push(...this.tokenize(text, f, depth + 1));
    }
    return out;
  }

  // ------------------------------------------------------------------ block structure

  /** Statements until the matching "}" (or the end at top level). */
  parse(toks: Token[]): Node[] {
    let i = 0;
    let missingReported = false;
    const isBrace = (t: Token, b: string) => !t.quoted && t.text === b;
    const block = (top: boolean): Node[] => {
      const nodes: Node[] = [];
      while (i < toks.length) {
        const t = toks[i++]!;
        if (isBrace(t, '}')) {
          if (!top) return nodes;
          this.err(t, 'unmatched "}"');
          continue;
        }
        if (isBrace(t, '{')) {
          this.err(t, 'block without a keyword');
          block(false);
          continue;
        }
        const args: Token[] = [];
        while (i < toks.length && toks[i]!.file === t.file && toks[i]!.line === t.line && !isBrace(toks[i]!, '{') && !isBrace(toks[i]!, '}')) {
          args.push(toks[i++]!);
        }
        let children: Node[] | null = null;
        if (i < toks.length && isBrace(toks[i]!, '{')) {
          i++;
          children = block(false);
        }
        nodes.push({ key: t, args, children });
      }
      if (!top && !missingReported) {
        missingReported = true;
        const last = toks[toks.length - 1]!;
        this.err(last, 'missing "}" before the end of the file');
      }
      return nodes;
    };
    return block(true);
  }

  // ------------------------------------------------------------------ values

  num(n: Node, i: number, min: number, max: number, int = true): number | undefined {
    const t = n.args[i];
    if (!t) {
      this.err(n.key, `${n.key.text} needs a value`);
      return undefined;
    }
    const v = Number(t.text);
    if (!/^-?\d+(\.\d+)?$/.test(t.text) || (int && !Number.isInteger(v)) || v < min || v > max) {
      this.err(t, `${n.key.text}: bad value "${t.text}" (want ${int ? 'an integer' : 'a number'} ${min}..${max})`);
      return undefined;
    }
    return v;
  }

  bool(n: Node): boolean {
    const t = n.args[0];
    if (!t) return true;
    const v = t.text.toLowerCase();
    if (['on', 'true', 'yes'].includes(v)) return true;
    if (['off', 'false', 'no'].includes(v)) return false;
    this.err(t, `${n.key.text}: bad boolean "${t.text}" (on|off|true|false|yes|no)`);
    return true;
  }

  ipv4(n: Node, i: number): string | undefined {
    const t = n.args[i];
    if (!t) {
      this.err(n.key, `${n.key.text} needs an address`);
      return undefined;
    }
    if (isIP(t.text) === 6) {
      this.err(t, `${n.key.text}: IPv6 is not supported by tsvsd yet`);
      return undefined;
    }
    if (isIP(t.text) !== 4) {
      this.err(t, `${n.key.text}: bad IPv4 address "${t.text}"`);
      return undefined;
    }
    return t.text;
  }

  noMoreArgs(n: Node, count: number): void {
    if (n.args.length > count) this.err(n.args[count]!, `${n.key.text}: unexpected "${n.args[count]!.text}"`);
  }

  noBlock(n: Node): void {
    if (n.children) this.err(n.key, `${n.key.text} takes no block`);
  }

  needBlock(n: Node): Node[] {
    if (!n.children) {
      this.err(n.key, `${n.key.text} needs a { } block`);
      return [];
    }
    return n.children;
  }

  /** lvs_method NAT|DR|TUN [type ipip]. */
  method(n: Node): string | undefined {
    const t = n.args[0];
    if (!t) {
      this.err(n.key, `${n.key.text} needs NAT, DR, TUN or FNAT`);
      return undefined;
    }
    const m = t.text.toUpperCase();
    if (m === 'NAT' || m === 'DR') {
      this.noMoreArgs(n, 1);
      return m.toLowerCase();
    }
    if (m === 'FNAT') {
      // DPVS's keepalived: full NAT, with local addresses from laddr_group_name.
      this.noMoreArgs(n, 1);
      return 'fullnat';
    }
    if (m === 'TUN') {
      if (n.args.length > 1) {
        if (n.args[1]!.text !== 'type' || n.args[2]?.text !== 'ipip' || n.args.length > 3) {
          this.err(n.args[1]!, `${n.key.text} TUN: only "type ipip" is supported by tsvsd (no GUE or GRE)`);
        }
      }
      return 'tun';
    }
    this.err(t, `${n.key.text}: unknown forwarding method "${t.text}" (NAT, DR, TUN or FNAT)`);
    return undefined;
  }

  /** A command (first token; extra tokens would name a user to run it as). */
  script(n: Node): string | undefined {
    if (!n.args[0]) {
      this.err(n.key, `${n.key.text} needs a command`);
      return undefined;
    }
    if (n.args.length > 1) this.err(n.args[1]!, `${n.key.text}: running commands as another user is not supported by tsvsd (quote the command if it has arguments)`);
    return n.args[0].text;
  }
}

function globToRegExp(glob: string): RegExp {
  let re = '^';
  for (const c of glob) {
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  return new RegExp(re + '$');
}

/** keepalived's free-form hex ("Ab12f 3 456" = AB 12 0F 03 45 06); `wild` allows x nibbles. */
export function keepalivedHex(words: string[], wild: boolean): string | null {
  let out = '';
  for (const w of words) {
    if (!(wild ? /^[0-9a-fA-FxX]+$/ : /^[0-9a-fA-F]+$/).test(w)) return null;
    let i = 0;
    for (; i + 1 < w.length; i += 2) out += w.slice(i, i + 2);
    if (i < w.length) out += '0' + w[i];
  }
  return out.toLowerCase();
}

/** Timing and behaviour settings inherited virtual_server → real_server → checker. */
interface Inherit {
  delayLoop?: number;
  connectTimeout?: number;
  retry?: number;
  delayBeforeRetry?: number;
  warmup?: number;
  alpha?: boolean;
  inhibit?: boolean;
  virtualhost?: string;
}

const lineOf = new WeakMap<object, Token>();

/** Handles a keyword shared by all three levels; false when `n` is not one of them. */
function inheritable(r: Reader, n: Node, into: Inherit): boolean {
  switch (n.key.text) {
    case 'delay_loop':
      into.delayLoop = r.num(n, 0, 0.001, 86400, false);
      return true;
    case 'connect_timeout':
      into.connectTimeout = r.num(n, 0, 0.001, 86400, false);
      return true;
    case 'retry':
    case 'nb_get_retry':
      into.retry = r.num(n, 0, 0, 99);
      return true;
    case 'delay_before_retry':
      into.delayBeforeRetry = r.num(n, 0, 0, 86400, false);
      return true;
    case 'warmup':
      into.warmup = r.num(n, 0, 0, 86400, false);
      return true;
    case 'alpha':
      into.alpha = r.bool(n);
      return true;
    case 'inhibit_on_failure':
      into.inhibit = r.bool(n);
      return true;
    case 'virtualhost':
      if (n.args[0]) into.virtualhost = n.args[0].text;
      else r.err(n.key, 'virtualhost needs a name');
      return true;
    default:
      return false;
  }
}

const IGNORED_NOTIFY = new Set(['smtp_alert', 'snmp_name']);
const UNSUPPORTED_CHECKERS: Record<string, string> = {
  SMTP_CHECK: 'SMTP_CHECK is not supported by tsvs (use MISC_CHECK with a script)',
  DNS_CHECK: 'DNS_CHECK is not supported by tsvs (use UDP_CHECK with a query payload, or MISC_CHECK)',
  BFD_CHECK: 'BFD_CHECK is not supported by tsvs (no BFD)',
  FILE_CHECK: 'FILE_CHECK is not supported by tsvs (use MISC_CHECK)',
};

type Obj = Record<string, unknown>;

function readChecker(r: Reader, n: Node, inh: Inherit): Obj[] {
  const type = n.key.text;
  const own: Inherit = {};
  const common: Obj = {};
  const urls: Obj[] = [];
  const extra: Obj = {};
  const isHttp = type === 'HTTP_GET' || type === 'SSL_GET';
  const isMisc = type === 'MISC_CHECK';
  let miscTimeout: number | undefined;
  let sni: string | undefined;
  for (const c of r.needBlock(n)) {
    const k = c.key.text;
    if (inheritable(r, c, own)) {
      if (isMisc && (k === 'connect_timeout' || k === 'virtualhost')) r.err(c.key, `${k} does not apply to MISC_CHECK (use misc_timeout)`);
      r.noBlock(c);
      continue;
    }
    if (!isMisc && k === 'connect_ip') {
      const a = r.ipv4(c, 0);
      if (a) common.address = a;
    } else if (!isMisc && k === 'connect_port') {
      const p = r.num(c, 0, 1, 65535);
      if (p !== undefined) common.port = p;
    } else if (!isMisc && k === 'bindto') {
      const a = r.ipv4(c, 0);
      if (a) common.source = a;
    } else if (!isMisc && (k === 'bind_if' || k === 'bind_port' || k === 'fwmark')) {
      r.err(c.key, `${k} is not supported by tsvs health checks (set health.source / health.namespace instead)`);
    } else if (k === 'log_all_failures') {
      r.ignore(c, 'tsvs logs each state change once and counts every failure');
    } else if (isHttp && k === 'url') {
      const u: Obj = {};
      for (const x of r.needBlock(c)) {
        const uk = x.key.text;
        r.noBlock(x);
        if (uk === 'path') {
          if (x.args[0]) u.path = x.args[0].text;
          else r.err(x.key, 'path needs a value');
        } else if (uk === 'digest') {
          if (x.args[0] && /^[0-9a-fA-F]{32}$/.test(x.args[0].text)) u.digest = x.args[0].text.toLowerCase();
          else r.err(x.key, 'digest needs an MD5 digest in hex (as genhash prints it)');
        } else if (uk === 'status_code') {
          const bad = x.args.find((a) => !/^\d{3}(-\d{3})?$/.test(a.text));
          if (!x.args.length || bad) r.err(bad ?? x.key, 'status_code needs codes or ranges, e.g. 200-299 301');
          else u.status = x.args.map((a) => a.text).join(' ');
        } else if (uk === 'virtualhost') {
          if (x.args[0]) u.virtualhost = x.args[0].text;
        } else if (uk === 'regex') {
          if (!x.args[0]) r.err(x.key, 'regex needs a pattern');
          else {
            try {
              new RegExp(x.args[0].text);
              u.regex = x.args[0].text;
            } catch {
              r.err(x.args[0], `regex: "${x.args[0].text}" is not a valid JavaScript regular expression`);
            }
          }
        } else if (uk === 'tls_compliant') {
          r.ignore(x, 'tsvs closes TLS connections with close_notify anyway');
        } else {
          r.err(x.key, `url: ${uk} is not supported by tsvs`);
        }
      }
      lineOf.set(u, c.key);
      urls.push(u);
    } else if (isHttp && (k === 'http_protocol' || k === 'fast_recovery')) {
      r.ignore(c, k === 'http_protocol' ? 'tsvs always sends HTTP/1.1 with Connection: close' : 'tsvs checks each URL at every interval');
    } else if (type === 'SSL_GET' && k === 'enable_sni') {
      // SNI is sent whenever a virtualhost is known.
      r.ignore(c, 'tsvs sends SNI whenever a virtualhost or sni_name is set');
    } else if (type === 'SSL_GET' && k === 'sni_name') {
      if (c.args[0]) sni = c.args[0].text;
    } else if (type === 'SSL_GET' && k === 'tls_compliant') {
      r.ignore(c, 'tsvs closes TLS connections with close_notify anyway');
    } else if (isMisc && k === 'misc_path') {
      const s = r.script(c);
      if (s) extra.command = s;
    } else if (isMisc && k === 'misc_timeout') {
      miscTimeout = r.num(c, 0, 1, 86400);
    } else if (isMisc && k === 'misc_dynamic') {
      extra.dynamic = r.bool(c);
    } else if (isMisc && k === 'user') {
      r.err(c.key, 'user: running MISC_CHECK as another user is not supported by tsvs');
    } else if (type === 'UDP_CHECK' && k === 'payload') {
      const h = keepalivedHex(c.args.map((a) => a.text), false);
      if (!h || !c.args.length) r.err(c.key, 'payload needs hex digits');
      else extra.payload_hex = h;
    } else if (type === 'UDP_CHECK' && k === 'require_reply') {
      extra.require_reply = true;
      if (c.args.length) {
        const h = keepalivedHex(c.args.map((a) => a.text), true);
        if (!h) r.err(c.key, 'require_reply: bad hex pattern');
        else extra.reply_hex = h;
      }
    } else {
      r.err(c.key, `${type}: ${k} is not supported by tsvs`);
    }
    if (c.children && !(isHttp && k === 'url')) r.err(c.key, `${k} takes no block`);
  }
  const eff = { ...inh, ...Object.fromEntries(Object.entries(own).filter(([, v]) => v !== undefined)) } as Inherit;
  const delayLoop = eff.delayLoop ?? KEEPALIVED_DEFAULTS.delayLoop;
  const retry = eff.retry ?? (isMisc ? KEEPALIVED_DEFAULTS.miscRetry : KEEPALIVED_DEFAULTS.retry);
  const base: Obj = {
    ...common,
    interval: delayLoop,
    timeout: isMisc ? (miscTimeout ?? delayLoop) : (eff.connectTimeout ?? KEEPALIVED_DEFAULTS.connectTimeout),
    rise: 1,
    fall: retry + 1,
    delay_before_retry: eff.delayBeforeRetry ?? (isHttp ? KEEPALIVED_DEFAULTS.httpDelayBeforeRetry : KEEPALIVED_DEFAULTS.delayBeforeRetry),
    warmup: eff.warmup ?? delayLoop,
    ...(eff.alpha !== undefined ? { alpha: eff.alpha } : {}),
    ...extra,
  };
  switch (type) {
    case 'TCP_CHECK':
      return [{ type: 'tcp', ...base }];
    case 'PING_CHECK':
      return [{ type: 'ping', ...base }];
    case 'MISC_CHECK':
      if (!extra.command) r.err(n.key, 'MISC_CHECK needs misc_path');
      return [{ type: 'misc', ...base }];
    case 'UDP_CHECK':
      // Without require_reply keepalived only fails on an ICMP error.
      return [{ type: 'udp', require_reply: false, ...base }];
    default: {
      const t = type === 'SSL_GET' ? 'https' : 'http';
      if (!urls.length) r.err(n.key, `${type} needs at least one url { path ... } block`);
      const vh = eff.virtualhost ?? sni;
      // keepalived's SSL_GET does not verify certificates unless given a CA; tsvs keeps it off.
      return urls.map((u) => {
        const o: Obj = { type: t, ...base, ...(vh ? { virtualhost: vh } : {}), ...u };
        lineOf.set(o, lineOf.get(u)!);
        return o;
      });
    }
  }
}

function readRealServer(r: Reader, n: Node, vsInh: Inherit, vsMethod: string | undefined): Obj | null {
  const addr = r.ipv4(n, 0);
  const port = n.args[1] ? r.num(n, 1, 0, 65535) : undefined;
  r.noMoreArgs(n, 2);
  const inh: Inherit = {};
  const rs: Obj = { address: addr ?? '0.0.0.0' };
  if (port !== undefined) rs.port = port;
  const checkNodes: Node[] = [];
  for (const c of r.needBlock(n)) {
    const k = c.key.text;
    if (/_CHECK$|^HTTP_GET$|^SSL_GET$/.test(k)) {
      if (UNSUPPORTED_CHECKERS[k]) r.err(c.key, UNSUPPORTED_CHECKERS[k]!);
      else if (['TCP_CHECK', 'HTTP_GET', 'SSL_GET', 'MISC_CHECK', 'UDP_CHECK', 'PING_CHECK'].includes(k)) checkNodes.push(c);
      else r.err(c.key, `unknown checker ${k}`);
      continue;
    }
    r.noBlock(c);
    if (inheritable(r, c, inh)) continue;
    if (k === 'weight') rs.weight = r.num(c, 0, 0, 65535);
    else if (k === 'lvs_method' || k === 'lb_kind') rs.method = r.method(c);
    else if (k === 'uthreshold') rs.upper_threshold = r.num(c, 0, 0, 2147483647);
    else if (k === 'lthreshold') rs.lower_threshold = r.num(c, 0, 0, 2147483647);
    else if (k === 'notify_up') rs.notify_up = r.script(c);
    else if (k === 'notify_down') rs.notify_down = r.script(c);
    else if (IGNORED_NOTIFY.has(k)) r.ignore(c, 'mail and SNMP notifications are not part of tsvs (use notify_up/notify_down)');
    else r.err(c.key, `real_server: ${k} is not supported by tsvs`);
  }
  if (!rs.method) rs.method = vsMethod ?? KEEPALIVED_DEFAULTS.method;
  const eff: Inherit = { ...vsInh };
  for (const [k, v] of Object.entries(inh)) if (v !== undefined) (eff as Obj)[k] = v;
  if (eff.inhibit) rs.inhibit_on_failure = true;
  const checks = checkNodes.flatMap((c) => {
    const list = readChecker(r, c, eff);
    for (const o of list) if (!lineOf.has(o)) lineOf.set(o, c.key);
    return list;
  });
  if (checks.length) rs.check = checks;
  for (const k of Object.keys(rs)) if (rs[k] === undefined) delete rs[k];
  lineOf.set(rs, n.key);
  return addr ? rs : null;
}

function readVirtualServer(r: Reader, n: Node): Obj | null {
  const a0 = n.args[0];
  if (!a0) {
    r.err(n.key, 'virtual_server needs an address and port');
    return null;
  }
  if (a0.text === 'fwmark') {
    r.err(a0, 'virtual_server fwmark: firewall-mark services are not supported by tsvsd (it owns its interfaces; no netfilter marks reach it). Declare one virtual_server per address and port');
    return null;
  }
  if (a0.text === 'group') {
    r.err(a0, 'virtual_server group: virtual_server_group is not supported by tsvs; declare one virtual_server per address and port');
    return null;
  }
  const addr = r.ipv4(n, 0);
  const port = n.args[1] ? r.num(n, 1, 0, 65535) : 0;
  r.noMoreArgs(n, 2);
  const vs: Obj = { address: addr ?? '0.0.0.0', port: port ?? 0, protocol: 'tcp', scheduler: KEEPALIVED_DEFAULTS.scheduler };
  const inh: Inherit = {};
  const flags: string[] = [];
  let method: string | undefined;
  const rsNodes: Node[] = [];
  let sorryMethod: string | undefined;
  for (const c of r.needBlock(n)) {
    const k = c.key.text;
    if (k === 'real_server') {
      rsNodes.push(c);
      continue;
    }
    r.noBlock(c);
    if (inheritable(r, c, inh)) continue;
    switch (k) {
      case 'lvs_sched':
      case 'lb_algo': {
        const s = c.args[0]?.text;
        if (!s || !SCHEDULERS.has(s)) r.err(c.args[0] ?? c.key, `${k}: unknown scheduler "${s ?? ''}"`);
        else vs.scheduler = s;
        break;
      }
      case 'lvs_method':
      case 'lb_kind':
        method = r.method(c);
        break;
      case 'flag-1':
      case 'flag-2':
      case 'flag-3':
      case 'sh-port':
      case 'sh-fallback':
      case 'mh-port':
      case 'mh-fallback':
        flags.push(k);
        break;
      case 'ops':
        vs.ops = true;
        break;
      case 'protocol': {
        const p = c.args[0]?.text.toUpperCase();
        if (p === 'TCP' || p === 'UDP') vs.protocol = p.toLowerCase();
        else if (p === 'SCTP') r.err(c.args[0]!, 'protocol SCTP is not supported by tsvsd yet');
        else r.err(c.args[0] ?? c.key, `protocol: want TCP or UDP`);
        break;
      }
      case 'persistence_timeout':
        vs.persistent = c.args[0] ? r.num(c, 0, 1, 2678400) : KEEPALIVED_DEFAULTS.persistenceTimeout;
        break;
      case 'persistence_granularity': {
        const m = c.args[0]?.text;
        if (!m || isIP(m) !== 4) r.err(c.args[0] ?? c.key, 'persistence_granularity needs an IPv4 netmask');
        else vs.netmask = m;
        break;
      }
      case 'persistence_engine':
        r.err(c.key, 'persistence_engine is not supported by tsvsd (no SIP persistence engine)');
        break;
      case 'hashed':
        r.err(c.key, 'hashed is not supported by tsvsd');
        break;
      case 'ip_family':
        if (c.args[0]?.text !== 'inet') r.err(c.args[0] ?? c.key, 'ip_family: only inet (IPv4) is supported by tsvsd');
        break;
      case 'quorum':
        vs.quorum = r.num(c, 0, 0, 2147483647);
        break;
      case 'hysteresis':
        vs.hysteresis = r.num(c, 0, 0, 2147483647);
        break;
      case 'quorum_up':
        vs.quorum_up = r.script(c);
        break;
      case 'quorum_down':
        vs.quorum_down = r.script(c);
        break;
      case 'omega':
        vs.omega = r.bool(c);
        break;
      case 'sorry_server': {
        const a = r.ipv4(c, 0);
        const p = c.args[1] ? r.num(c, 1, 0, 65535) : undefined;
        r.noMoreArgs(c, 2);
        if (a) vs.sorry_server = p !== undefined ? { address: a, port: p } : { address: a };
        if (vs.sorry_server) lineOf.set(vs.sorry_server as object, c.key);
        break;
      }
      case 'sorry_server_inhibit':
        vs.sorry_server_inhibit = r.bool(c);
        break;
      case 'sorry_server_lvs_method':
        sorryMethod = r.method(c);
        break;
      case 'ha_suspend':
        r.ignore(c, 'tsvsd always owns its virtual addresses, so checks are never suspended');
        break;
      case 'laddr_group_name':
        // DPVS's keepalived; resolved against the local_address_group blocks once the file is read.
        if (!c.args[0]) r.err(c.key, 'laddr_group_name needs a group name');
        else laddrGroupRef.set(vs, c.args[0]);
        break;
      case 'proxy_protocol': {
        const v = c.args[0]?.text.toLowerCase();
        if (v === 'v1' || v === 'v2') vs.proxy_protocol = v;
        else if (v !== 'disable') r.err(c.args[0] ?? c.key, `proxy_protocol: "${c.args[0]?.text ?? ''}" is not supported by tsvs (v1, v2 or disable)`);
        break;
      }
      default:
        if (IGNORED_NOTIFY.has(k)) r.ignore(c, 'mail and SNMP notifications are not part of tsvs (use quorum_up/quorum_down)');
        else r.err(c.key, `virtual_server: ${k} is not supported by tsvs`);
    }
  }
  if (flags.length) vs.sched_flags = flags;
  // alpha is a virtual_server default like the timers; the YAML service carries it too.
  if (inh.alpha !== undefined) vs.alpha = inh.alpha;
  const realservers = rsNodes.map((c) => readRealServer(r, c, inh, method)).filter((x): x is Obj => x !== null);
  vs.realservers = realservers;
  if (vs.sorry_server) (vs.sorry_server as Obj).method = sorryMethod ?? method ?? KEEPALIVED_DEFAULTS.method;
  for (const k of Object.keys(vs)) if (vs[k] === undefined) delete vs[k];
  lineOf.set(vs, n.key);
  return addr ? vs : null;
}

/** The laddr_group_name token of each virtual_server that has one (DPVS's keepalived). */
const laddrGroupRef = new WeakMap<object, Token>();

/**
 * DPVS's `local_address_group NAME { ADDR IFNAME | A.B.C.D-E IFNAME ... }`: the LIPs (and the
 * interface each lives on) of the FullNAT services that name the group.
 */
function readLaddrGroup(r: Reader, n: Node, groups: Map<string, { token: Token; laddrs: Obj[] }>): void {
  const name = n.args[0];
  if (!name) {
    r.err(n.key, 'local_address_group needs a name');
    return;
  }
  const laddrs: Obj[] = [];
  for (const c of r.needBlock(n)) {
    r.noBlock(c);
    const m = /^(\d{1,3}\.\d{1,3}\.\d{1,3}\.)(\d{1,3})(?:-(\d{1,3}))?$/.exec(c.key.text);
    const ifname = c.args[0]?.text;
    if (!m || Number(m[2]) > 255 || (m[3] !== undefined && (Number(m[3]) > 255 || Number(m[3]) < Number(m[2])))) {
      r.err(c.key, `local_address_group ${name.text}: "${c.key.text}" is not an IPv4 address or A.B.C.D-E range`);
      continue;
    }
    const last = m[3] === undefined ? Number(m[2]) : Number(m[3]);
    for (let i = Number(m[2]); i <= last; i++) laddrs.push(ifname ? { address: `${m[1]}${i}`, interface: ifname } : { address: `${m[1]}${i}` });
  }
  groups.set(name.text, { token: name, laddrs });
}

/** The VRRP instance token each lvs_sync_daemon names, for the line of its errors. */
const syncInstance = new WeakMap<object, Token>();

/**
 * lvs_sync_daemon IFNAME [INSTANCE | inst NAME] [id SYNCID] [maxlen N] [port P] [ttl T] [group ADDR]
 * (keepalived's lvs_syncd_handler, with the old positional INSTANCE SYNCID form). keepalived warns and
 * ignores a bad value; tsvs refuses it, naming the line.
 */
function readSyncDaemon(r: Reader, n: Node): Obj | null {
  r.noBlock(n);
  const ifname = n.args[0];
  if (!ifname) {
    r.err(n.key, 'lvs_sync_daemon requires interface');
    return null;
  }
  if (ifname.text.length >= 16) {
    r.err(ifname, `lvs_sync_daemon interface name '${ifname.text}' too long`);
    return null;
  }
  const d: Obj = { interface: ifname.text };
  let inst: Token | undefined;
  for (let i = 1; i < n.args.length; i++) {
    const t = n.args[i]!;
    const word = t.text;
    const value = n.args[i + 1];
    const num = (name: string, min: number, max: number): number | undefined => {
      if (!value) {
        r.err(t, `No value specified for lvs_sync_daemon ${name}`);
        return undefined;
      }
      const v = Number(value.text);
      if (!/^\d+$/.test(value.text) || v < min || v > max) {
        r.err(value, `lvs_sync_daemon ${name}: bad value "${value.text}" (want an integer ${min}..${max})`);
        return undefined;
      }
      return v;
    };
    if (word === 'inst') {
      if (!value) r.err(t, 'No value specified for lvs_sync_daemon inst');
      else if (inst) r.err(value, `lvs_sync_daemon vrrp instance has already been specified as ${inst.text}`);
      else inst = value;
      i++;
    } else if (word === 'id') {
      const v = num('id', 0, 255);
      if (v !== undefined) d.syncid = v;
      i++;
    } else if (word === 'maxlen') {
      const v = num('maxlen', 1, 65535 - 20 - 8);
      if (v !== undefined) d.maxlen = v;
      i++;
    } else if (word === 'port') {
      const v = num('port', 1, 65535);
      if (v !== undefined) d.port = v;
      i++;
    } else if (word === 'ttl') {
      const v = num('ttl', 1, 255);
      if (v !== undefined) d.ttl = v;
      i++;
    } else if (word === 'group') {
      const a = value ? r.ipv4(n, i + 1) : undefined;
      if (!value) r.err(t, 'No value specified for lvs_sync_daemon group');
      else if (a !== undefined && (Number(a.split('.')[0]) < 224 || Number(a.split('.')[0]) > 239)) {
        r.err(value, `lvs_sync_daemon group address ${a} is not multicast`);
      } else if (a !== undefined) d.group = a;
      i++;
    } else if (i === 1) inst = t;
    else if (i === 2 && /^\d+$/.test(word)) {
      i--;
      const v = num('id', 0, 255);
      i++;
      if (v !== undefined) d.syncid = v;
    } else r.err(t, `Unknown option ${word} specified for lvs_sync_daemon`);
  }
  if (!inst) {
    r.err(n.key, 'lvs_sync_daemon: name the VRRP instance the daemon follows (lvs_sync_daemon IFNAME INSTANCE, or inst NAME)');
    return null;
  }
  d.vrrp_instance = inst.text;
  syncInstance.set(d, inst);
  lineOf.set(d, n.key);
  return d;
}

/**
 * Resolves the instance lvs_sync_daemon follows: the daemon starts in the role of the instance's
 * configured state (MASTER: master, otherwise backup) and takes its virtual_router_id as syncid
 * unless `id` was given, as keepalived does.
 */
function resolveSyncInstance(r: Reader, nodes: Node[], d: Obj): void {
  const name = d.vrrp_instance as string;
  const n = nodes.find((x) => x.key.text === 'vrrp_instance' && x.args[0]?.text === name);
  if (!n) {
    r.err(syncInstance.get(d) ?? (lineOf.get(d) as Token), `lvs_sync_daemon: unable to find vrrp instance ${name}`);
    return;
  }
  let state = 'backup';
  for (const c of n.children ?? []) {
    if (c.key.text === 'state' && c.args[0]?.text.toUpperCase() === 'MASTER') state = 'master';
    if (c.key.text === 'virtual_router_id' && d.syncid === undefined && /^\d+$/.test(c.args[0]?.text ?? '')) {
      const v = Number(c.args[0]!.text);
      if (v >= 1 && v <= 255) d.syncid = v;
    }
  }
  d.state = state;
}

function readGlobalDefs(r: Reader, n: Node, out: Obj, vrrp: VrrpGlobals): void {
  for (const c of r.needBlock(n)) {
    const k = c.key.text;
    if (k.startsWith('vrrp_') && readVrrpGlobal(r, c, vrrp)) {
      r.noBlock(c);
      continue;
    }
    if (k === 'lvs_timeouts') {
      const t: Obj = {};
      for (let i = 0; i < c.args.length; i += 2) {
        const name = c.args[i]!.text;
        if (name !== 'tcp' && name !== 'tcpfin' && name !== 'udp') {
          r.err(c.args[i]!, `lvs_timeouts: unknown timeout "${name}" (tcp, tcpfin, udp)`);
          continue;
        }
        const v = r.num(c, i + 1, 1, 2147483647);
        if (v !== undefined) t[name] = v;
      }
      out.timeouts = t;
    } else if (k === 'lvs_sync_daemon') {
      const d = readSyncDaemon(r, c);
      if (d) {
        if (out.sync_daemon) r.err(c.key, 'lvs_sync_daemon is given twice');
        else out.sync_daemon = [d];
      }
    } else if (k === 'lvs_flush' || k === 'lvs_flush_on_stop') {
      r.ignore(c, 'tsvsd starts with an empty table and takes it down when it stops');
    } else if (k.startsWith('vrrp_')) {
      r.ignore(c, 'a keepalived VRRP tuning tsvsd does not need (it follows keepalived\'s defaults)');
    } else if (GLOBAL_IGNORABLE.has(k) || /^(smtp_|snmp_|notification_|bfd_|enable_|dbus_|script_)/.test(k)) {
      r.ignore(c, 'does not affect the LVS table');
    } else {
      r.err(c.key, `global_defs: ${k} is not supported by tsvs`);
    }
  }
}

const VRRP_UNSUPPORTED = new Set(['vrrp_script', 'vrrp_track_process', 'vrrp_track_file', 'track_file', 'track_process', 'garp_group', 'linkbeat_interfaces']);

/** Orders "file:line: msg" lines by file (first appearance) and line. */
function sortByPlace(lines: string[]): string[] {
  const files: string[] = [];
  const keyed = lines.map((l, i) => {
    const m = /^(.*?):(\d+): /.exec(l);
    const f = m ? m[1]! : '';
    if (!files.includes(f)) files.push(f);
    return { l, i, f, n: m ? Number(m[2]) : 0 };
  });
  keyed.sort((a, b) => files.indexOf(a.f) - files.indexOf(b.f) || a.n - b.n || a.i - b.i);
  return keyed.map((k) => k.l);
}

/** Finds the token of the deepest object on a zod issue path, for the error's line. */
function lineForPath(root: Obj, path: readonly PropertyKey[]): Token | undefined {
  let cur: unknown = root;
  let found: Token | undefined;
  for (const p of path) {
    if (cur === null || typeof cur !== 'object') break;
    cur = (cur as Record<PropertyKey, unknown>)[p as string];
    if (cur && typeof cur === 'object') found = lineOf.get(cur) ?? found;
  }
  return found;
}

/**
 * Parses keepalived.conf text into tsvsd's Config. Throws ConfigError listing every unsupported or
 * bad keyword with its file and line; keywords accepted without effect are returned in `ignored`.
 */
export function parseKeepalivedText(text: string, file = 'keepalived.conf'): KeepalivedResult {
  const r = new Reader();
  const nodes = r.parse(r.tokenize(text, file, 0));
  const out: Obj = { services: [] };
  const services = out.services as Obj[];
  const seen = new Map<string, Token>();
  // VRRP fields by path ("vrrp.instances.0.vrid"), for errors found after the merge with flags.
  const places = new Map<string, Token>();
  const vrrpGlobals: VrrpGlobals = {};
  const instances: Obj[] = [];
  const syncGroups: Obj[] = [];
  // global_defs first: its vrrp_* settings are the instances' defaults wherever it stands.
  for (const n of nodes) if (n.key.text === 'global_defs') readGlobalDefs(r, n, out, vrrpGlobals);
  const laddrGroups = new Map<string, { token: Token; laddrs: Obj[] }>();
  for (const n of nodes) {
    const k = n.key.text;
    if (k === 'local_address_group') readLaddrGroup(r, n, laddrGroups);
    else if (k === 'vrrp_instance') {
      const i = instances.length;
      const o = readVrrpInstance(r, n, vrrpGlobals, (f, t) => places.set(`vrrp.instances.${i}${f ? `.${f}` : ''}`, t));
      if (o) instances.push(o);
    } else if (k === 'vrrp_sync_group') {
      const i = syncGroups.length;
      const o = readVrrpSyncGroup(r, n, (f, t) => places.set(`vrrp.sync_groups.${i}${f ? `.${f}` : ''}`, t));
      if (o) syncGroups.push(o);
    } else if (k === 'virtual_server') {
      const vs = readVirtualServer(r, n);
      if (!vs) continue;
      const key = `${vs.protocol} ${vs.address}:${vs.port}`;
      const prev = seen.get(key);
      if (prev) r.err(n.key, `virtual_server ${vs.address} ${vs.port} (${vs.protocol}) is already defined at ${prev.file}:${prev.line}`);
      else {
        seen.set(key, n.key);
        services.push(vs);
      }
    } else if (k === 'global_defs') continue;
    else if (VRRP_UNSUPPORTED.has(k) || k.startsWith('vrrp_')) r.err(n.key, `${k} is not supported by tsvs (to follow a virtual service's health, use track_services in tsvsd's YAML vrrp: section)`);
    else if (k === 'static_ipaddress' || k === 'static_routes' || k === 'static_rules') r.err(n.key, `${k} is not supported by tsvs (give tsvsd its addresses and routes with --address/--route or the YAML config)`);
    else if (k === 'virtual_server_group') r.err(n.key, 'virtual_server_group is not supported by tsvs; declare one virtual_server per address and port');
    else if (k === 'SSL') r.err(n.key, 'SSL (client certificates for SSL_GET) is not supported by tsvs');
    else if (k === 'bfd_instance') r.err(n.key, 'bfd_instance: BFD is not supported by tsvs');
    else r.err(n.key, `unknown keyword ${k}`);
  }
  if (instances.length || syncGroups.length) out.vrrp = { instances, sync_groups: syncGroups };
  for (const d of (out.sync_daemon as Obj[] | undefined) ?? []) resolveSyncInstance(r, nodes, d);
  for (const vs of services) {
    const ref = laddrGroupRef.get(vs);
    if (!ref) continue;
    const g = laddrGroups.get(ref.text);
    if (!g) r.err(ref, `laddr_group_name: no local_address_group ${ref.text}`);
    else vs.laddrs = g.laddrs;
  }
  if (r.errors.length) throw new ConfigError(sortByPlace(r.errors).join('\n'));
  const place = (path: readonly PropertyKey[]): Token | undefined => {
    for (let n = path.length; n > 0; n--) {
      const t = places.get(path.slice(0, n).join('.'));
      if (t) return t;
    }
    return lineForPath(out, path);
  };
  const parsed = configSchema.safeParse(out);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const t = place(i.path);
      return `${t ? `${t.file}:${t.line}` : file}: ${i.path[0] === 'vrrp' ? `${i.path.slice(1).join('.')}: ` : ''}${i.message}`;
    });
    throw new ConfigError(lines.join('\n'));
  }
  const config = attachWhere(parsed.data, (path) => {
    const t = place(path);
    return t ? `${t.file}:${t.line}` : file;
  });
  return { config, ignored: r.ignored };
}

/** Reads a keepalived.conf file (and its includes); see parseKeepalivedText. */
export function loadKeepalivedFile(file: string): KeepalivedResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError(`${file}: cannot read: ${(e as Error).message}`);
  }
  return parseKeepalivedText(text, file);
}

/** True when a config file looks like keepalived's rather than tsvs's YAML (by name or content). */
export function looksLikeKeepalived(file: string, text: string): boolean {
  if (/keepalived|\.conf$/.test(basename(file))) return true;
  return /^\s*(virtual_server|global_defs|vrrp_instance)\b[^:\n]*\{/m.test(text);
}
