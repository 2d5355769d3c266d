// The TS path as the fast-path tests' reference: a Dataplane over memory ports, and entries built from what it sent.
import assert from 'node:assert/strict';
import { MemoryPort } from '../../src/io/memory.ts';
import { Dataplane } from '../../src/dp/dataplane.ts';
import { validateConfig } from '../../src/ctl/config.ts';
import { PacketBuilder, ip, mac } from '../packet/builder.ts';
import { METHOD, type FastEntry, type Method } from '../../src/fastpath/layout.ts';

export const LAN_MAC = '02:00:00:00:01:01';
export const NAT_MAC = '02:00:00:00:01:02';
export const ROUTER_MAC = '02:00:00:00:0a:01';
export const RS_MAC = '02:00:00:00:0b:01';

/** A director with a TCP :80 and a UDP :53 service of one real server forwarded by `method`. */
export function setup(method: 'nat' | 'dr' | 'tun', maxFrame = 4096) {
  const lan = new MemoryPort('lan0', { mac: mac(LAN_MAC), maxFrame, capacity: 512 });
  const nat = new MemoryPort('nat0', { mac: mac(NAT_MAC), maxFrame });
  const rip = method === 'nat' ? '198.18.2.11' : method === 'dr' ? '198.18.1.11' : '198.19.0.11';
  const config = validateConfig({
    interfaces: ['lan0', 'nat0'],
    addresses: ['198.18.1.100/32@lan0', '198.18.1.2/24@lan0', '198.18.2.1/24@nat0'],
    gateway: '198.18.1.1',
    services: [
      { protocol: 'tcp', address: '198.18.1.100', port: 80, scheduler: 'rr', realservers: [{ address: rip, port: method === 'nat' ? 8080 : 80, method }] },
      { protocol: 'udp', address: '198.18.1.100', port: 53, scheduler: 'rr', realservers: [{ address: rip, port: method === 'nat' ? 5353 : 53, method }] },
    ],
  });
  const dp = new Dataplane([lan, nat], config, () => {});
  const d = dp.director;
  d.neigh.learn(ip('198.18.1.1'), 0, mac(ROUTER_MAC), 0, 0, true);
  d.neigh.learn(ip(rip), method === 'nat' ? 1 : 0, mac(RS_MAC), 0, 0, true);
  lan.drain();
  nat.drain();
  let now = 1;
  /** Frames the TS path sent, per port, for one input frame (vnet header included). */
  const ts = (port: MemoryPort, f: Uint8Array): { lan: Uint8Array[]; nat: Uint8Array[] } => {
    port.inject(f);
    d.runOnce(now++);
    return { lan: lan.drain(), nat: nat.drain() };
  };
  return { lan, nat, ts, rip, dp };
}

export const bytesOf = (b: PacketBuilder): Uint8Array => {
  const f = b.build();
  return f.buf.slice(f.off, f.off + f.len);
};
export const eth = (f: Uint8Array): Uint8Array => f.subarray(10);
export const u32 = (b: Uint8Array, at: number): number => ((b[at]! << 24) | (b[at + 1]! << 16) | (b[at + 2]! << 8) | b[at + 3]!) >>> 0;
export const u16 = (b: Uint8Array, at: number): number => (b[at]! << 8) | b[at + 1]!;

/** The entry for what the TS path did to `input` (Ethernet onward) when it sent `output`. */
export function entryFromTs(method: Method, input: Uint8Array, output: Uint8Array, mtu = 1500, ifindex = 7): FastEntry {
  const e: FastEntry = {
    method, forward: method === METHOD.NAT_OUT, mtu, ifindex, addr: 0, port: 0,
    dmac: output.slice(0, 6), smac: output.slice(6, 12), tunSaddr: 0, tunDaddr: 0,
  };
  if (method === METHOD.NAT_IN) {
    e.addr = u32(output, 30);
    e.port = u16(output, 36);
  } else if (method === METHOD.NAT_OUT) {
    e.addr = u32(output, 26);
    e.port = u16(output, 34);
  } else if (method === METHOD.TUN) {
    e.tunSaddr = u32(output, 26);
    e.tunDaddr = u32(output, 30);
  }
  assert.ok(input.length >= 38);
  return e;
}

export const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');
