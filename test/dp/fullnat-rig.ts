// A FullNAT director over memory ports for golden tests: client LAN, real servers behind a router on nat0, one LIP.
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import { PacketBuilder, ip, mac } from '../packet/builder.ts';
import { ParsedFrame, parseFrame, PARSE } from '../../src/packet/parse.ts';

export const LAN_MAC = '02:00:00:00:01:01';
export const NAT_MAC = '02:00:00:00:01:02';
export const ROUTER_MAC = '02:00:00:00:0a:01';
export const RS_ROUTER_MAC = '02:00:00:00:0c:01';
export const CIP = '198.18.0.2';
export const VIP = '198.18.1.100';
export const LIP = '198.18.2.50';
export const LIP2 = '198.18.2.51';
export const RIP = '198.19.5.11';

export interface RigOptions {
  laddrs?: { address: string; interface?: string }[];
  proxy?: 'v1' | 'v2';
  /** Also a UDP service VIP:53 → RIP:5353. */
  udp?: boolean;
}

/**
 * TCP VIP:80 → RIP:8080 by FullNAT, the real servers behind 198.18.2.254 (their gateway is not the
 * director), neighbours resolved.
 */
export function fullnatRig(o: RigOptions = {}) {
  const laddrs = o.laddrs ?? [{ address: LIP, interface: 'nat0' }];
  const lan = new MemoryPort('lan0', { mac: mac(LAN_MAC), maxFrame: 4096 });
  const nat = new MemoryPort('nat0', { mac: mac(NAT_MAC), maxFrame: 4096 });
  const config = validateConfig({
    interfaces: ['lan0', 'nat0'],
    addresses: [`${VIP}/32@lan0`, '198.18.1.2/24@lan0', '198.18.2.1/24@nat0'],
    gateway: '198.18.1.1',
    routes: ['198.19.5.0/24=198.18.2.254'],
    services: [
      { protocol: 'tcp', address: VIP, port: 80, scheduler: 'rr', laddrs, ...(o.proxy ? { proxy_protocol: o.proxy } : {}), realservers: [{ address: RIP, port: 8080, method: 'fullnat' }] },
      ...(o.udp ? [{ protocol: 'udp', address: VIP, port: 53, scheduler: 'rr', laddrs, realservers: [{ address: RIP, port: 5353, method: 'fullnat' }] }] : []),
    ],
  });
  const dp = new Dataplane([lan, nat], config, () => {});
  const d = dp.director;
  d.neigh.learn(ip('198.18.1.1'), 0, mac(ROUTER_MAC), 0, 0, true);
  d.neigh.learn(ip('198.18.2.254'), 1, mac(RS_ROUTER_MAC), 0, 0, true);
  lan.drain();
  nat.drain();
  return { lan, nat, dp, d };
}

export function send(port: MemoryPort, b: PacketBuilder): void {
  const f = b.build();
  port.inject(f.buf.subarray(f.off, f.off + f.len));
}

/** Frames the port sent, parsed with L4 checksum verification. */
export function out(port: MemoryPort) {
  return port.drain().map((f) => {
    const p = new ParsedFrame();
    const v = parseFrame(f, 0, f.length, p, PARSE.VERIFY_L4);
    return { f, p, v };
  });
}
