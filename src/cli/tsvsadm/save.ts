// ipvsadm -S: the table as the -A/-a command lines that -R reads back (thresholds are not saved, as in ipvsadm).
import type { DestEntry, LaddrListResult, ListResult, ServiceEntry } from '../../ctl/protocol.ts';
import { saveLaddrs } from './laddr.ts';
import { addrPort, nonDefaultMask, schedFlagNames, sortForListing } from './format.ts';
import type { Names } from './resolve.ts';

/** The service argument of a rule: "-t addr:port", "-u ...", "--sctp-service ...", "-f N" or "-f N -6". */
export function ruleServiceName(svc: ServiceEntry, names: Names | null): string {
  const k = svc.key;
  if (k.type === 'fwmark') return k.ipv6 ? `-f ${k.fwmark} -6` : `-f ${k.fwmark}`;
  const opt = k.type === 'tcp' ? '-t' : k.type === 'udp' ? '-u' : '--sctp-service';
  return `${opt} ${addrPort(k.addr, k.port, k.type, names)}`;
}

const FWD_SWITCH: Record<DestEntry['fwd'], string> = { masq: '-m', tunnel: '-i', route: '-g', local: '-g', fullnat: '-b' };
const CSUM_OPT: Record<DestEntry['tunCsum'], string> = { nocsum: '--tun-nocsum', csum: '--tun-csum', remcsum: '--tun-remcsum' };

/** One service's -A line, its -P lines (FullNAT local addresses) and its -a lines. */
export function saveService(svc: ServiceEntry, names: Names | null, laddrs?: LaddrListResult): string {
  const sname = ruleServiceName(svc, names);
  let out = `-A ${sname} -s ${svc.scheduler}`;
  if (svc.persistent) {
    out += ` -p ${svc.timeout}`;
    const mask = nonDefaultMask(svc);
    if (mask !== null) out += ` -M ${mask}`;
  }
  if (svc.pe) out += ` --pe ${svc.pe}`;
  if (svc.onePacket) out += ' -o';
  if (svc.proxyProtocol && svc.proxyProtocol !== 'disable') out += ` --proxy-protocol ${svc.proxyProtocol}`;
  if (svc.schedFlags & 7) out += ` -b ${schedFlagNames(svc)}`;
  out += '\n';
  const mine = laddrs?.services.find((s) => JSON.stringify(s.key) === JSON.stringify(svc.key));
  if (mine) out += saveLaddrs(sname, mine.laddrs);
  const proto = svc.key.type === 'fwmark' ? 'tcp' : svc.key.type;
  for (const d of svc.dests) {
    const dname = addrPort(d.addr, d.port, proto, names);
    const base = `-a ${sname} -r ${dname} ${FWD_SWITCH[d.fwd]} -w ${d.weight}`;
    if (d.fwd !== 'tunnel') out += base + '\n';
    else if (d.tunType === 'gre') out += `${base} --tun-type gre ${CSUM_OPT[d.tunCsum]}\n`;
    else if (d.tunType === 'gue') out += `${base} --tun-type gue --tun-port ${d.tunPort} ${CSUM_OPT[d.tunCsum]}\n`;
    else out += `${base} --tun-type ipip\n`;
  }
  return out;
}

/** The whole table as -S prints it (sorted as ipvsadm sorts; no header). */
export function formatSave(list: ListResult, names: Names | null, nosort = false, laddrs?: LaddrListResult): string {
  let out = '';
  for (const s of sortForListing(list.services, nosort)) out += saveService(s, names, laddrs);
  return out;
}
