// FullNAT transmitter (DPVS's FNAT): CIP:cport → VIP:vport becomes LIP:lport → RIP:rport on the way in, and back on the way out.
import type { ParsedFrame } from '../../packet/parse.ts';
import { frameSetDaddr, frameSetDport, frameSetSaddr, frameSetSport } from '../../packet/rewrite.ts';
import type { XmitResult } from '../../dp/director.ts';

/**
 * Rewrites both ends of the segment and routes it by its new destination. In: (LIP, lport, RIP,
 * rport), so the real server answers the director's LIP and needs no route back through it. Out:
 * (VIP, vport, CIP, cport). Incremental checksums; a partial (NEEDS_CSUM) seed is updated for the
 * addresses and left for the ports, which the final pass over the segment covers; GSO state is
 * carried unchanged.
 */
export function fnatXmit(buf: Uint8Array, p: ParsedFrame, saddr: number, sport: number, daddr: number, dport: number,
  out: XmitResult): number {
  frameSetSaddr(buf, p, saddr);
  frameSetSport(buf, p, sport);
  frameSetDaddr(buf, p, daddr);
  frameSetDport(buf, p, dport);
  return out.set(p.frame, p.ipEnd, 0, false);
}
