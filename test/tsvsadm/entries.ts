// Test fixtures for listing goldens: the control protocol's service and real-server entries with zero counters by default.
import type { DestEntry, ServiceEntry } from '../../src/ctl/protocol.ts';
import type { Format } from '../../src/cli/tsvsadm/args.ts';

/** The numeric listing format with no extra columns (-L -n). */
export const F0: Format = { numeric: true, stats: false, rate: false, thresholds: false, persistentConn: false, nosort: false, exact: false, tunInfo: false };
export const Z = { conns: 0, inpkts: 0, outpkts: 0, inbytes: 0, outbytes: 0 };
export const ZR = { cps: 0, inpps: 0, outpps: 0, inbps: 0, outbps: 0 };

export function dest(addr: string, port: number, fwd: DestEntry['fwd'], weight: number, active: number, inact: number, extra: Partial<DestEntry> = {}): DestEntry {
  return {
    addr, port, fwd, weight, uThreshold: 0, lThreshold: 0, tunType: 'ipip', tunPort: 0, tunCsum: 'nocsum',
    activeConns: active, inactConns: inact, persistConns: 0, stats: Z, rates: ZR, ...extra,
  };
}

/** A service entry; the netmask defaults to the family's full mask (/32 dotted, or 128). */
export function svc(key: ServiceEntry['key'], scheduler: string, dests: DestEntry[], extra: Partial<ServiceEntry> = {}): ServiceEntry {
  const v6 = key.type === 'fwmark' ? !!key.ipv6 : key.addr.includes(':');
  return {
    key, scheduler, persistent: false, timeout: 0, netmask: v6 ? '128' : '255.255.255.255', onePacket: false, schedFlags: 0, pe: '',
    stats: Z, rates: ZR, dests, ...extra,
  };
}
