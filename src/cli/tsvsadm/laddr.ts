// DPVS's ipvsadm -G listing (FullNAT local addresses per service) and the -P lines -S saves for them.
import type { LaddrListResult, ServiceKey } from '../../ctl/protocol.ts';
import { addrPort } from './format.ts';

const pad = (s: string | number, n: number) => String(s).padEnd(n);

function keyText(k: ServiceKey): string {
  return k.type === 'fwmark' ? `FWM ${k.fwmark}` : addrPort(k.addr, k.port, k.type === 'sctp' ? 'sctp' : k.type, null);
}

/**
 * The listing as DPVS's list_laddrs / list_all_laddrs print it: one title, then per service a line
 * with VIP:VPORT and the number of LIPs, then one line per LIP with its conflicts and conns
 * (printf "%-20s %-8s %-20s %-10s %-10s").
 */
export function formatLaddrs(r: LaddrListResult): string {
  let out = '';
  r.services.forEach((s, i) => {
    if (i === 0) out += `${pad('VIP:VPORT', 20)} ${pad('TOTAL', 8)} ${pad('SNAT_IP', 20)} ${pad('CONFLICTS', 10)} ${pad('CONNS', 10)}\n`;
    out += `${pad(keyText(s.key), 20)} ${pad(s.laddrs.length, 8)} \n`;
    for (const l of s.laddrs) out += `${pad('', 20)} ${pad('', 8)} ${pad(l.addr, 20)} ${pad(l.conflicts, 10)} ${pad(l.conns, 10)}\n`;
  });
  return out;
}

/** The -P lines that give the service (named as -S names it) its LIPs back on -R. */
export function saveLaddrs(sname: string, laddrs: LaddrListResult['services'][number]['laddrs']): string {
  let out = '';
  for (const l of laddrs) out += `-P ${sname} -z ${l.addr}${l.ifname ? ` -F ${l.ifname}` : ''}\n`;
  return out;
}
