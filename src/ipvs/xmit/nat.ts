// NAT (masquerading) transmitters: VIP:vport → RIP:rport on the way in, RIP:rport → VIP:vport on the way out.
import type { ParsedFrame } from '../../packet/parse.ts';
import { frameSetDaddr, frameSetDport, frameSetSaddr, frameSetSport } from '../../packet/rewrite.ts';
import type { XmitResult } from '../../dp/director.ts';

/** Client → real server: rewrite the destination to the conn's RIP:rport; routed by the new destination. */
export function natIn(buf: Uint8Array, p: ParsedFrame, rip: number, rport: number, out: XmitResult): number {
  if (p.daddr !== rip) frameSetDaddr(buf, p, rip);
  if (p.dport !== rport) frameSetDport(buf, p, rport);
  return out.set(p.frame, p.ipEnd, 0, false);
}

/** Real server → client (FORWARD): rewrite the source back to VIP:vport; TTL is decremented by the caller. */
export function natOut(buf: Uint8Array, p: ParsedFrame, vip: number, vport: number, out: XmitResult): number {
  if (p.saddr !== vip) frameSetSaddr(buf, p, vip);
  if (p.sport !== vport) frameSetSport(buf, p, vport);
  return out.set(p.frame, p.ipEnd, 0, true);
}
