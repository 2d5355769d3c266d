// Reads keepalived.conf's vrrp_instance and vrrp_sync_group blocks (and the vrrp_* defaults of global_defs) into tsvsd's `vrrp:` configuration, with keepalived's defaults.
import { isIP } from 'node:net';

/** The parts of the keepalived reader this module uses (see keepalived.ts). */
export interface KaToken {
  text: string;
  quoted: boolean;
  file: string;
  line: number;
}
export interface KaNode {
  key: KaToken;
  args: KaToken[];
  children: KaNode[] | null;
}
export interface KaReader {
  err(t: KaToken, msg: string): void;
  ignore(n: KaNode, why: string): void;
  num(n: KaNode, i: number, min: number, max: number, int?: boolean): number | undefined;
  ipv4(n: KaNode, i: number): string | undefined;
  noMoreArgs(n: KaNode, count: number): void;
  noBlock(n: KaNode): void;
  needBlock(n: KaNode): KaNode[];
  script(n: KaNode): string | undefined;
}

type Obj = Record<string, unknown>;

/** global_defs settings that are defaults for every vrrp_instance (keepalived's vrrp_* globals). */
export interface VrrpGlobals {
  version?: number;
  garpDelay?: number;
  garpRepeat?: number;
  garpRefresh?: number;
  garpRefreshRepeat?: number;
}

/** Handles a vrrp_* key of global_defs; false when it is not one this reader knows. */
export function readVrrpGlobal(r: KaReader, n: KaNode, g: VrrpGlobals): boolean {
  switch (n.key.text) {
    case 'vrrp_version':
      g.version = r.num(n, 0, 2, 3);
      return true;
    case 'vrrp_garp_master_delay':
      g.garpDelay = r.num(n, 0, 0, 86400, false);
      return true;
    case 'vrrp_garp_master_repeat':
      g.garpRepeat = r.num(n, 0, 1, 255);
      return true;
    case 'vrrp_garp_master_refresh':
      g.garpRefresh = r.num(n, 0, 0, 86400, false);
      return true;
    case 'vrrp_garp_master_refresh_repeat':
      g.garpRefreshRepeat = r.num(n, 0, 1, 255);
      return true;
    case 'vrrp_mcast_group4':
      if (n.args[0]?.text !== '224.0.0.18') r.err(n.args[0] ?? n.key, 'vrrp_mcast_group4: tsvsd sends and joins 224.0.0.18 only (use unicast_peer for anything else)');
      return true;
    default:
      return false;
  }
}

/** Keywords accepted without effect inside vrrp_instance, with the reason. */
const IGNORED: Record<string, string> = {
  smtp_alert: 'mail notifications are not part of tsvs (use notify scripts)',
  dont_track_primary: 'tsvsd tracks the link of the interface it owns',
  debug: 'tsvsd logs every transition with its reason',
  strict_mode: 'tsvsd already follows RFC 5798 checks',
  garp_lower_prio_repeat: 'tsvsd answers a lower-priority advert with an advert, not with GARPs',
  garp_lower_prio_delay: 'tsvsd answers a lower-priority advert with an advert, not with GARPs',
  lower_prio_no_advert: 'tsvsd always answers a lower-priority advert (keepalived\'s default)',
  higher_prio_send_advert: 'tsvsd yields to a higher-priority advert without answering it (keepalived\'s default)',
};

/** Reads one vrrp_instance block into a `vrrp.instances[]` entry; `at` records the line of each field. */
export function readVrrpInstance(r: KaReader, n: KaNode, g: VrrpGlobals, at: (field: string | null, t: KaToken) => void): Obj | null {
  const name = n.args[0]?.text;
  if (!name) {
    r.err(n.key, 'vrrp_instance needs a name');
    return null;
  }
  r.noMoreArgs(n, 1);
  at(null, n.key);
  const o: Obj = {
    name,
    version: g.version ?? 2,
    garp_master_delay: g.garpDelay ?? 5,
    garp_master_repeat: g.garpRepeat ?? 5,
    garp_master_refresh: g.garpRefresh ?? 0,
    garp_master_refresh_repeat: g.garpRefreshRepeat ?? 1,
  };
  let addrLine: KaToken | null = null;
  for (const c of r.needBlock(n)) {
    const k = c.key.text;
    const set = (field: string, v: unknown) => {
      if (v === undefined) return;
      o[field] = v;
      at(field, c.key);
    };
    if (k === 'virtual_ipaddress' || k === 'unicast_peer' || k === 'track_interface' || k === 'authentication') {
      const block = r.needBlock(c);
      if (k === 'virtual_ipaddress') {
        addrLine = c.key;
        const list: string[] = [];
        for (const a of block) {
          const v = readVip(r, a);
          if (v) {
            at(`addresses.${list.length}`, a.key);
            list.push(v);
          }
        }
        set('addresses', list);
        if (!list.length) r.err(c.key, 'virtual_ipaddress needs at least one address');
      } else if (k === 'unicast_peer') {
        const peers: string[] = [];
        for (const p of block) {
          const t = p.key;
          if (isIP(t.text) !== 4) r.err(t, `unicast_peer: bad IPv4 address "${t.text}"`);
          else peers.push(t.text);
          if (p.args.length) r.err(p.args[0]!, `unicast_peer: ${p.args[0]!.text} is not supported by tsvsd (min_ttl/max_ttl)`);
        }
        set('unicast_peers', peers);
      } else if (k === 'track_interface') {
        const list: Obj[] = [];
        for (const t of block) {
          const entry: Obj = { name: t.key.text };
          if (t.args.length) {
            if (t.args[0]!.text !== 'weight') r.err(t.args[0]!, `track_interface: unexpected "${t.args[0]!.text}" (want weight N)`);
            else {
              const w = r.num(t, 1, -253, 253);
              if (w !== undefined) entry.weight = w;
              if (t.args[2]) r.err(t.args[2], 'track_interface: "reverse" is not supported by tsvsd');
            }
          }
          list.push(entry);
        }
        set('track_interfaces', list);
      } else {
        for (const a of block) {
          if (a.key.text === 'auth_type') {
            const v = a.args[0]?.text.toUpperCase();
            if (v === 'AH') r.err(a.args[0]!, 'auth_type AH (IPsec) is not supported by tsvsd; use PASS');
            else if (v !== 'PASS') r.err(a.args[0] ?? a.key, 'auth_type: want PASS');
          } else if (a.key.text === 'auth_pass') {
            if (!a.args[0]) r.err(a.key, 'auth_pass needs a password');
            else {
              o.auth_pass = a.args[0].text;
              at('auth_pass', a.key);
            }
          } else r.err(a.key, `authentication: ${a.key.text} is not supported by tsvs`);
        }
      }
      continue;
    }
    r.noBlock(c);
    switch (k) {
      case 'state': {
        const v = c.args[0]?.text.toUpperCase();
        if (v !== 'MASTER' && v !== 'BACKUP') r.err(c.args[0] ?? c.key, 'state: want MASTER or BACKUP');
        else set('state', v);
        break;
      }
      case 'interface':
        if (!c.args[0]) r.err(c.key, 'interface needs a name');
        else set('interface', c.args[0].text);
        break;
      case 'virtual_router_id':
        set('vrid', r.num(c, 0, 1, 255));
        break;
      case 'priority':
        set('priority', r.num(c, 0, 1, 255));
        break;
      case 'advert_int':
        set('advert_int', r.num(c, 0, 0.01, 255, false));
        break;
      case 'version':
        set('version', r.num(c, 0, 2, 3));
        break;
      case 'nopreempt':
        set('preempt', false);
        break;
      case 'preempt':
        set('preempt', true);
        break;
      case 'preempt_delay':
        set('preempt_delay', r.num(c, 0, 0, 1000, false));
        break;
      case 'unicast_src_ip':
        set('unicast_src_ip', r.ipv4(c, 0));
        break;
      case 'garp_master_delay':
        set('garp_master_delay', r.num(c, 0, 0, 86400, false));
        break;
      case 'garp_master_repeat':
        set('garp_master_repeat', r.num(c, 0, 1, 255));
        break;
      case 'garp_master_refresh':
        set('garp_master_refresh', r.num(c, 0, 0, 86400, false));
        break;
      case 'garp_master_refresh_repeat':
        set('garp_master_refresh_repeat', r.num(c, 0, 1, 255));
        break;
      case 'notify_master':
      case 'notify_backup':
      case 'notify_fault':
      case 'notify_stop':
      case 'notify':
        set(k, r.script(c));
        break;
      default:
        if (IGNORED[k]) r.ignore(c, IGNORED[k]!);
        else r.err(c.key, `vrrp_instance: ${k} is not supported by tsvs`);
    }
  }
  // keepalived: without a priority, `state MASTER` means the address owner (255); otherwise 100.
  if (o.priority === undefined && o.state === 'MASTER') o.priority = 255;
  for (const f of ['interface', 'vrid'] as const) if (o[f] === undefined) r.err(n.key, `vrrp_instance ${name}: ${f === 'vrid' ? 'virtual_router_id' : f} is required`);
  if (!addrLine) r.err(n.key, `vrrp_instance ${name}: virtual_ipaddress is required`);
  // keepalived: an initial state MASTER clears nopreempt and preempt_delay (it warns); tsvsd refuses, so the file says what runs.
  if (o.state === 'MASTER' && o.preempt === false) r.err(n.key, `vrrp_instance ${name}: nopreempt does not work with state MASTER (keepalived clears it); use state BACKUP`);
  if (o.auth_pass !== undefined && o.version === 3) r.err(n.key, `vrrp_instance ${name}: authentication is VRRP v2 only`);
  return o;
}

/** "ADDR[/PFX] [dev IF] [label L]" of virtual_ipaddress as tsvs's "ADDR/PFX@IF". */
function readVip(r: KaReader, a: KaNode): string | null {
  const m = /^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?$/.exec(a.key.text);
  if (!m || isIP(m[1]!) !== 4 || (m[2] !== undefined && Number(m[2]) > 32)) {
    r.err(a.key, isIP(a.key.text.split('/')[0]!) === 6 ? 'virtual_ipaddress: IPv6 is not supported by tsvsd yet' : `virtual_ipaddress: bad address "${a.key.text}"`);
    return null;
  }
  let dev: string | undefined;
  for (let i = 0; i < a.args.length; i += 2) {
    const w = a.args[i]!.text;
    const v = a.args[i + 1];
    if (w === 'dev' && v) dev = v.text;
    else if (w === 'label' && v) continue;
    else {
      r.err(a.args[i]!, `virtual_ipaddress: "${w}" is not supported by tsvsd (ADDR[/PREFIX] [dev IF] [label L])`);
      return null;
    }
  }
  return `${m[1]}/${m[2] ?? 32}${dev ? `@${dev}` : ''}`;
}

/** Reads a vrrp_sync_group block (`group { A B }` and notify scripts). */
export function readVrrpSyncGroup(r: KaReader, n: KaNode, at: (field: string | null, t: KaToken) => void): Obj | null {
  const name = n.args[0]?.text;
  if (!name) {
    r.err(n.key, 'vrrp_sync_group needs a name');
    return null;
  }
  at(null, n.key);
  const o: Obj = { name, instances: [] };
  for (const c of r.needBlock(n)) {
    const k = c.key.text;
    if (k === 'group') {
      o.instances = r.needBlock(c).map((m) => m.key.text);
      at('instances', c.key);
      r.needBlock(c).forEach((m, j) => at(`instances.${j}`, m.key));
      continue;
    }
    r.noBlock(c);
    if (['notify_master', 'notify_backup', 'notify_fault', 'notify_stop', 'notify'].includes(k)) {
      const s = r.script(c);
      if (s) {
        o[k] = s;
        at(k, c.key);
      }
    } else if (k === 'smtp_alert') r.ignore(c, 'mail notifications are not part of tsvs (use notify scripts)');
    else r.err(c.key, `vrrp_sync_group: ${k} is not supported by tsvs`);
  }
  if (!(o.instances as string[]).length) r.err(n.key, `vrrp_sync_group ${name} needs a group { ... } of instances`);
  return o;
}
