// `tsvs vrrp`'s listing: one line per VRRP instance (state, priority, master, counters), then the sync groups.
import type { VrrpSnapshot } from './host.ts';

function secs(ms: number): string {
  return ms < 60_000 ? `${(ms / 1000).toFixed(1)}s` : ms < 3_600_000 ? `${Math.floor(ms / 60_000)}m${Math.floor((ms % 60_000) / 1000)}s` : `${Math.floor(ms / 3_600_000)}h${Math.floor((ms % 3_600_000) / 60_000)}m`;
}

/** Renders the snapshot as a table; `--json` prints the snapshot itself instead. */
export function formatVrrp(s: VrrpSnapshot): string {
  if (!s.instances.length) return 'no VRRP instance is configured\n';
  const head = ['INSTANCE', 'IFACE', 'VRID', 'VER', 'STATE', 'PRIO', 'MASTER', 'ADVERT', 'SENT', 'RCVD', 'BAD', 'SINCE', 'ADDRESSES'];
  const rows = s.instances.map((i) => [
    i.name,
    i.interface,
    String(i.vrid),
    `v${i.version}${i.unicast ? 'u' : ''}`,
    i.state,
    i.priority === i.basePriority ? String(i.priority) : `${i.priority}(${i.basePriority})`,
    i.master ? `${i.master}${i.state === 'MASTER' ? '' : `/${i.masterPriority}`}` : '-',
    `${i.advertInt}s`,
    String(i.stats.advertsSent),
    String(i.stats.advertsReceived),
    String(i.stats.advertsBad),
    secs(i.sinceMs),
    i.addresses.join(','),
  ]);
  const w = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (r: string[]) => r.map((v, c) => (c === r.length - 1 ? v : v.padEnd(w[c]!))).join('  ').trimEnd();
  const out = [line(head), ...rows.map(line)];
  for (const i of s.instances) {
    if (i.faults.length) out.push(`  ${i.name}: fault: ${i.faults.join('; ')}`);
    const bad = Object.entries(i.bad).filter(([k]) => k !== 'own');
    if (bad.length) out.push(`  ${i.name}: bad adverts: ${bad.map(([k, v]) => `${k} ${v}`).join(', ')}`);
    if (i.stats.addrListMismatch) out.push(`  ${i.name}: ${i.stats.addrListMismatch} adverts listed other addresses than ours (taken, as keepalived does)`);
  }
  for (const g of s.groups) out.push(`sync group ${g.name}: ${g.state} (${g.instances.join(', ')})`);
  const un = Object.entries(s.unmatched);
  if (un.length) out.push(`adverts for no instance: ${un.map(([k, v]) => `${k} ${v}`).join(', ')}`);
  return out.join('\n') + '\n';
}
