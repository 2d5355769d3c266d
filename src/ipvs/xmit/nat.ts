// NAT (masquerading) transmitters: VIP:vport → RIP:rport on the way in, RIP:rport → VIP:vport on the way out.
import type { ParsedFrame } from '../../packet/parse.ts';
import { frameSetDaddr, frameSetDport, frameSetSaddr, frameSetSport } from '../../packet/rewrite.ts';
import { XMIT_SEND, type XmitResult } from '../../dp/director.ts';

/** Client → real server: rewrite the destination to the conn's RIP:rport; routed by the new destination. */
export function natIn(buf: Uint8Array, p: ParsedFrame, rip: number, rport: number, out: XmitResult): number {
  if (p.daddr !== rip) frameSetDaddr(buf, p, rip);
  if (p.dport !== rport) frameSetDport(buf, p, rport);
  out.frame = p.frame;
  out.end = p.ipEnd;
  out.nextHop = 0;
  out.port = -1;
  out.forwarded = false;
  return XMIT_SEND;
}

/** Real server → client (FORWARD): rewrite the source back to VIP:vport; TTL is decremented by the caller. */
export function natOut(buf: Uint8Array, p: ParsedFrame, vip: number, vport: number, out: XmitResult): number {
  if (p.saddr !== vip) frameSetSaddr(buf, p, vip);
  if (p.sport !== vport) frameSetSport(buf, p, vport);
  out.frame = p.frame;
  out.end = p.ipEnd;
  out.nextHop = 0;
  out.port = -1;
  out.forwarded = true;
  return XMIT_SEND;
}
