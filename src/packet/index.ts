// Wire formats as in-place views on I/O buffers: the public API of src/packet (re-exports only).
//
// Layout: every frame a port hands over starts with a 10-byte virtio_net_hdr, then the Ethernet frame.
// Functions that need that header take `off` = the vnet header start and `len` as the port reports it
// (parseFrame, ipipEncap/ipipDecap, completePartialChecksum, builders' `dstOff`); everything else
// takes absolute offsets of the layer it works on (`eth`, `l3`, `l4`), as ParsedFrame provides them.
// Addresses are uint32 in host order; nothing here allocates per call or throws on bad input.
//
// Parse     parseFrame(buf, off, len, out: ParsedFrame, opts: PARSE bits): Verdict   (parse.ts)
//           verdictName(v), VERDICT_COUNT, PF (flags), PARSE (options)
// Rewrite   setDaddr/setSaddr(buf, l3, l4|-1, proto, addr, partial), setDport/setSport(buf, l4, proto,
//           port, partial), frameSetDaddr/frameSetSaddr/frameSetDport/frameSetSport(buf, p, v),
//           ipv4DecTtl(buf, l3): newTtl|0, setEthAddrs/swapEthAddrs, completePartialChecksum(buf, off, len)
// Checksum  sum16, csumFold, pseudoSum, ipv4HeaderChecksum/ipv4SetChecksum/ipv4ChecksumOk,
//           l4Checksum/l4SetChecksum/l4ChecksumOk/l4PartialSeed, icmpChecksum/icmpSetChecksum,
//           csumReplace16/csumReplace32 (RFC 1624), csumPartialReplace32 (NEEDS_CSUM rule)
// ARP       parseArp(buf, arp, end, out: ArpPacket), arpReplyInPlace(buf, eth, arp, mac, macOff),
//           buildArp/buildArpRequest/buildGratuitousArp(dst, off, ...): frame length
// ICMP      icmpEchoReplyInPlace(buf, p, ttl), icmpErrorAllowed(buf, p),
//           buildIcmpError/buildFragNeeded/buildTimeExceeded/buildPortUnreachable(dst, dstOff, orig, origL3, origEnd, ...),
//           parseIcmpInner(buf, p, out: IcmpInner), icmpInnerSetSaddr/Daddr/Sport/Dport(buf, inner, v)
// IPIP      ipipEncap(buf, off, len, saddr, daddr, ttl, id): newOff|-1, ipipDecap(buf, off, len): newOff|-1
//
// Partial checksums (vnet NEEDS_CSUM, PF.CSUM_PARTIAL): the TCP/UDP field holds the folded
// pseudo-header sum; address rewrites add ~old + new without complementing, port rewrites leave it.

export * from './checksum.ts';
export * from './vnet.ts';
export * from './ethernet.ts';
export * from './ipv4.ts';
export * from './l4.ts';
export * from './parse.ts';
export * from './rewrite.ts';
export * from './arp.ts';
export * from './icmp.ts';
export * from './ipip.ts';
