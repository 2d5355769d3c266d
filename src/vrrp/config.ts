// The `vrrp:` part of tsvsd's configuration: instances and sync groups with keepalived's defaults, their cross-checks, and the resolved form the data plane runs.
import { isIP } from 'node:net';
import { z } from 'zod';
import { ipToU32 } from '../lib/inet.ts';
import { VRRP_GROUP } from './packet.ts';

const ipv4 = z.string().refine((s) => isIP(s) === 4, { message: 'must be an IPv4 address' });
const script = z.string().min(1);

/** "ADDR[/PREFIX][@IFNAME]": the prefix defaults to 32 and the interface to the instance's (keepalived's virtual_ipaddress). */
const vipSpec = z.string().regex(/^(\d{1,3}(?:\.\d{1,3}){3})(?:\/(\d{1,2}))?(?:@([^\s@/]{1,15}))?$/, {
  message: 'must look like ADDR[/PREFIX][@IFNAME], e.g. 198.18.1.100/32',
}).refine((s) => {
  const m = /^([^/@]+)(?:\/(\d+))?/.exec(s)!;
  return isIP(m[1]!) === 4 && (m[2] === undefined || Number(m[2]) <= 32);
}, { message: 'address must be IPv4 and prefix 0..32' });

/** A tracked interface: link down means FAULT (weight 0) or a priority change by the weight. */
const trackInterface = z.union([
  z.string().min(1).max(15).transform((name) => ({ name, weight: 0 })),
  z.object({ name: z.string().min(1).max(15), weight: z.number().int().min(-253).max(253).default(0) }).strict(),
]);

/** A tracked virtual service ("tcp 198.18.1.100:80"): losing its quorum means FAULT (weight 0) or a priority change. */
const trackService = z.object({
  service: z.string().regex(/^(tcp|udp) (\d{1,3}(?:\.\d{1,3}){3}):(\d{1,5})$/i, { message: 'must look like "tcp 198.18.1.100:80"' }),
  weight: z.number().int().min(-253).max(253).default(0),
}).strict();

export const vrrpInstanceSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, { message: 'must be 1-64 letters, digits or _.:-' }),
    interface: z.string().min(1).max(15),
    /** keepalived's virtual_router_id. */
    vrid: z.number().int().min(1).max(255),
    /** keepalived's default vrrp_version is 2. */
    version: z.union([z.literal(2), z.literal(3)]).default(2),
    priority: z.number().int().min(1).max(255).default(100),
    /** Seconds; v2 whole seconds 1..255, v3 0.01..40.95. */
    advert_int: z.number().positive().max(255).default(1),
    /**
     * Initial state as keepalived's `state`: MASTER takes over after one advert interval when nobody
     * answers (at once with priority 255); BACKUP waits Master_Down_Interval, even an address owner.
     * Unset, keepalived derives it from the priority: MASTER for 255, BACKUP otherwise.
     */
    state: z.enum(['MASTER', 'BACKUP']).optional(),
    preempt: z.boolean().default(true),
    /** Seconds a backup waits before preempting a lower-priority master. */
    preempt_delay: z.number().min(0).max(1000).default(0),
    addresses: z.array(vipSpec).min(1),
    unicast_src_ip: ipv4.optional(),
    unicast_peers: z.array(ipv4).default([]),
    /** v2 `authentication { auth_type PASS; auth_pass ... }` (first 8 bytes count). */
    auth_pass: z.string().min(1).optional(),
    track_interfaces: z.array(trackInterface).default([]),
    track_services: z.array(trackService).default([]),
    /** keepalived's GARP timing: repeat on becoming master, a second burst after the delay, optional refresh. */
    garp_master_delay: z.number().min(0).max(86400).default(5),
    garp_master_repeat: z.number().int().min(1).max(255).default(5),
    garp_master_refresh: z.number().min(0).max(86400).default(0),
    garp_master_refresh_repeat: z.number().int().min(1).max(255).default(1),
    notify_master: script.optional(),
    notify_backup: script.optional(),
    notify_fault: script.optional(),
    notify_stop: script.optional(),
    /** Run on every transition with keepalived's arguments: INSTANCE NAME STATE PRIORITY. */
    notify: script.optional(),
  })
  .strict()
  .refine((i) => i.version === 3 || Number.isInteger(i.advert_int), { message: 'VRRP v2 advertises whole seconds (1..255); use version 3 for fractions', path: ['advert_int'] })
  .refine((i) => i.version === 2 || (i.advert_int >= 0.01 && i.advert_int <= 40.95), { message: 'VRRP v3 advert_int must be 0.01..40.95 s', path: ['advert_int'] })
  .refine((i) => i.version === 2 || i.auth_pass === undefined, { message: 'authentication is VRRP v2 only (RFC 5798 removed it)', path: ['auth_pass'] })
  .refine((i) => i.unicast_src_ip === undefined || i.unicast_peers.length > 0, { message: 'unicast_src_ip needs unicast_peers', path: ['unicast_src_ip'] });

export const vrrpSyncGroupSchema = z
  .object({
    name: z.string().regex(/^[A-Za-z0-9_.:-]{1,64}$/, { message: 'must be 1-64 letters, digits or _.:-' }),
    instances: z.array(z.string().min(1)).min(1),
    notify_master: script.optional(),
    notify_backup: script.optional(),
    notify_fault: script.optional(),
    notify_stop: script.optional(),
    notify: script.optional(),
  })
  .strict();

export const vrrpSchema = z
  .object({
    instances: z.array(vrrpInstanceSchema).default([]),
    sync_groups: z.array(vrrpSyncGroupSchema).default([]),
  })
  .strict();

export type VrrpConfig = z.output<typeof vrrpSchema>;
export type VrrpInstanceConfig = z.output<typeof vrrpInstanceSchema>;
export type VrrpSyncGroupConfig = z.output<typeof vrrpSyncGroupSchema>;

/** An instance address after defaults. */
export interface VipSpec {
  addr: string;
  prefix: number;
  ifname: string;
}

export function parseVip(s: string, defaultIf: string): VipSpec {
  const m = /^([^/@]+)(?:\/(\d+))?(?:@(.+))?$/.exec(s)!;
  return { addr: m[1]!, prefix: m[2] === undefined ? 32 : Number(m[2]), ifname: m[3] ?? defaultIf };
}

/** What the cross-checks need of the whole configuration. */
export interface VrrpContext {
  interfaces: readonly string[];
  /** The director's fixed addresses (ADDR/PREFIX@IFNAME). */
  addresses: readonly string[];
  /** Configured services as "tcp 198.18.1.100:80". */
  services: readonly string[];
}

/** Where a config path came from ("file:line"), for error messages. */
export type WhereFn = (path: readonly (string | number)[]) => string;

/** The director's own address on `ifname` that adverts leave from (the first --address there). */
export function ownAddressOn(ctx: Pick<VrrpContext, 'addresses'>, ifname: string): string | undefined {
  for (const a of ctx.addresses) {
    const [cidr, ifn] = a.split('@');
    if (ifn === ifname) return cidr!.split('/')[0]!;
  }
  return undefined;
}

/**
 * Checks what a schema cannot see alone: a VRID twice on one interface, an address in two instances
 * or also given with --address, an interface tsvsd does not own, an advert source it does not have,
 * unknown or shared sync-group members, unknown tracked services. One "file:line: path: message" per problem.
 */
export function checkVrrp(v: VrrpConfig, ctx: VrrpContext, where: WhereFn): string[] {
  const out: string[] = [];
  const fail = (path: (string | number)[], msg: string) => out.push(`${where(['vrrp', ...path])}: vrrp.${fmt(path)}: ${msg}`);
  const vrids = new Map<string, string>();
  const owners = new Map<string, string>();
  const names = new Set<string>();
  const fixed = new Set(ctx.addresses.map((a) => a.split('/')[0]!));
  v.instances.forEach((inst, i) => {
    if (names.has(inst.name)) fail(['instances', i, 'name'], `instance ${inst.name} is defined twice`);
    names.add(inst.name);
    if (!ctx.interfaces.includes(inst.interface)) fail(['instances', i, 'interface'], `interface ${inst.interface} is not one of the director's interfaces (--interface)`);
    const key = `${inst.interface}/${inst.vrid}`;
    const prev = vrids.get(key);
    if (prev) fail(['instances', i, 'vrid'], `VRID ${inst.vrid} on ${inst.interface} is already used by instance ${prev}`);
    else vrids.set(key, inst.name);
    inst.addresses.forEach((a, j) => {
      const s = parseVip(a, inst.interface);
      const other = owners.get(s.addr);
      if (other) fail(['instances', i, 'addresses', j], `address ${s.addr} is already in instance ${other}`);
      else owners.set(s.addr, inst.name);
      if (fixed.has(s.addr)) fail(['instances', i, 'addresses', j], `address ${s.addr} is also given with --address: an instance's addresses are the director's only while it is MASTER`);
      if (!ctx.interfaces.includes(s.ifname)) fail(['instances', i, 'addresses', j], `interface ${s.ifname} is not one of the director's interfaces (--interface)`);
      if (ipToU32(s.addr) >>> 28 === 0xe) fail(['instances', i, 'addresses', j], `${s.addr} is a multicast address`);
    });
    if (inst.unicast_src_ip !== undefined) {
      if (!ctx.addresses.some((a) => a.startsWith(`${inst.unicast_src_ip}/`) && a.endsWith(`@${inst.interface}`)))
        fail(['instances', i, 'unicast_src_ip'], `${inst.unicast_src_ip} is not one of the director's addresses on ${inst.interface} (--address ${inst.unicast_src_ip}/PREFIX@${inst.interface})`);
    } else if (ctx.interfaces.includes(inst.interface) && ownAddressOn(ctx, inst.interface) === undefined) {
      fail(['instances', i, 'interface'], `the director has no address of its own on ${inst.interface} to send adverts from (give one with --address ADDR/PREFIX@${inst.interface})`);
    }
    inst.track_services.forEach((t, j) => {
      const k = t.service.toLowerCase();
      if (!ctx.services.includes(k)) fail(['instances', i, 'track_services', j, 'service'], `no virtual service ${t.service} is configured`);
    });
    if (inst.priority === 255 && !inst.preempt) fail(['instances', i, 'preempt'], 'an address owner (priority 255) always preempts (keepalived resets nopreempt)');
  });
  const member = new Map<string, string>();
  v.sync_groups.forEach((g, i) => {
    g.instances.forEach((n, j) => {
      if (!names.has(n)) fail(['sync_groups', i, 'instances', j], `no instance ${n}`);
      const prev = member.get(n);
      if (prev) fail(['sync_groups', i, 'instances', j], `instance ${n} is already in sync group ${prev}`);
      else member.set(n, g.name);
    });
  });
  return out;
}

function fmt(path: readonly (string | number)[]): string {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s ? `.${p}` : p;
  return s;
}

/** One instance as the data plane runs it (numbers, defaults applied, interface resolved to a port later). */
export interface ResolvedInstance {
  cfg: VrrpInstanceConfig;
  src: number;
  /** Multicast group or unicast peers, host order. */
  peers: number[];
  vips: Array<{ addr: number; prefix: number; ifname: string }>;
}

/** Resolves every instance's numbers (after checkVrrp passed). */
export function resolveVrrp(v: VrrpConfig, ctx: Pick<VrrpContext, 'addresses'>): ResolvedInstance[] {
  return v.instances.map((cfg) => {
    const src = cfg.unicast_src_ip ?? ownAddressOn(ctx, cfg.interface) ?? '0.0.0.0';
    return {
      cfg,
      src: ipToU32(src),
      peers: cfg.unicast_peers.length ? cfg.unicast_peers.map(ipToU32) : [VRRP_GROUP],
      vips: cfg.addresses.map((a) => {
        const s = parseVip(a, cfg.interface);
        return { addr: ipToU32(s.addr), prefix: s.prefix, ifname: s.ifname };
      }),
    };
  });
}
