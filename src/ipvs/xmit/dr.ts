// DR (direct routing) transmitter: addresses untouched; the frame goes to the real server's MAC.
import type { ParsedFrame } from '../../packet/parse.ts';
import type { XmitResult } from '../../dp/director.ts';

/** Client → real server on the director's L2 segment: next hop is the RIP itself. */
export function drXmit(p: ParsedFrame, rip: number, out: XmitResult): number {
  return out.set(p.frame, p.ipEnd, rip, false);
}
