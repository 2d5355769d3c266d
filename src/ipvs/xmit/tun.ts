// TUN (IP-in-IP) transmitter: an outer IPv4 header DIP → RIP, with the MTU rule and GSO segmented in software.
import { PF, type ParsedFrame } from '../../packet/parse.ts';
import { ipipEncap, IPIP_HLEN } from '../../packet/ipip.ts';
import { completePartialChecksum } from '../../packet/rewrite.ts';
import { gsoSegment } from '../../packet/gso.ts';
import { Director, ICMP_FRAG_NEEDED, XMIT_CONSUMED, type XmitResult } from '../../dp/director.ts';
import { Drop } from '../../dp/drops.ts';

const MAX_SEGS = 64;
const segOffs = new Uint32Array(MAX_SEGS);
const segLens = new Uint32Array(MAX_SEGS);
let ipId = 1;

/**
 * Encapsulates toward `rip`. The decapsulating real server may hand the inner packet to its stack
 * through a path that drops offload state (a userspace decapsulator, a NIC without tunnel offloads),
 * so the inner packet leaves complete: partial checksums are finished and GSO frames are cut into
 * wire-sized segments here. A packet that would exceed the egress MTU with DF set is answered with
 * fragmentation-needed carrying MTU − 20, as the kernel's ip_vs_tunnel_xmit does.
 */
export function tunXmit(dir: Director, buf: Uint8Array, p: ParsedFrame, inPort: number, rip: number, out: XmitResult): number {
  const r = dir.routes.lookup(rip);
  if (r === undefined) return -Drop.NO_ROUTE - 1;
  const port = r.port;
  const mtu = dir.ports[port]!.mtu;
  const dip = dir.sourceFor(port);
  const gso = (p.flags & PF.GSO) !== 0;
  const segLen = gso ? p.l4 - p.l3 + p.l4HdrLen + p.gsoSize : p.totLen;
  if (segLen + IPIP_HLEN > mtu) {
    if ((p.flags & PF.DF) !== 0) {
      dir.sendIcmpError(inPort, p, ICMP_FRAG_NEEDED, mtu - IPIP_HLEN);
      return -Drop.TOO_BIG - 1;
    }
    // Without DF the outer packet may be fragmented; tsvs does not fragment, so it is dropped.
    return -Drop.TOO_BIG - 1;
  }
  const ttl = 64;
  if (gso) {
    const slot = dir.scratchFrameSize;
    const n = Math.ceil((p.ipEnd - p.l4 - p.l4HdrLen) / (p.gsoSize || 1));
    if (n > MAX_SEGS || !dir.scratchSlots(n, segOffs)) return -Drop.GSO_UNSUPPORTED - 1;
    const made = gsoSegment(buf, p.frame, p.ipEnd - p.frame, p.l3, p.l4, p.l4HdrLen, buf, segOffs, segLens, slot);
    if (made < 0) return -Drop.GSO_UNSUPPORTED - 1;
    for (let k = 0; k < made; k++) {
      const o = ipipEncap(buf, segOffs[k]!, segLens[k]!, dip, rip, ttl, ipId++ & 0xffff);
      if (o < 0) continue;
      dir.output(o, segLens[k]! + IPIP_HLEN, rip, -1);
    }
    return XMIT_CONSUMED;
  }
  if (!completePartialChecksum(buf, p.frame, p.ipEnd - p.frame)) return -Drop.MALFORMED - 1;
  const o = ipipEncap(buf, p.frame, p.ipEnd - p.frame, dip, rip, ttl, ipId++ & 0xffff);
  if (o < 0) return -Drop.MALFORMED - 1;
  // The frame grew at the front: `end` is unchanged, `frame` moved 20 bytes left.
  return out.set(o, p.ipEnd, rip, false);
}
