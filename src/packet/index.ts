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
// IPv6 (docs/ipv6.md): addresses are four host-order words in a Uint32Array, passed as (array, index)
// so connection tables can hand theirs over without copying.
// Parse     parseFrame6(buf, off, len, out: ParsedFrame6, opts): Verdict, PF6, EXTHDR_MAX   (parse6.ts)
// Header    IP6, NEXTHDR, writeIpv6Header, ipv6DecHopLimit, readAddr6/writeAddr6/addr6Equals,
//           ipv6FromString/ipv6ToString (slow path)
// Checksum  pseudoSum6, l4Checksum6/l4SetChecksum6/l4ChecksumOk6/l4PartialSeed6, addr6Diff +
//           csumApplyDiff (RFC 1624) / csumPartialApplyDiff (NEEDS_CSUM rule)
// Rewrite   setDaddr6/setSaddr6(buf, l3, l4|-1, proto, a, ai, partial), frameSetDaddr6/Saddr6/Dport6/Sport6
// ip6ip6    ip6ip6Encap(buf, off, len, src, si, dst, di): newOff|-1, ip6ip6Decap(buf, off, len): newOff|-1
// ICMPv6    icmp6ErrorAllowed, buildIcmp6Error/buildPacketTooBig/buildPortUnreachable6/buildTimeExceeded6,
//           icmp6EchoReplyInPlace, parseIcmp6Inner + icmp6InnerSetSaddr/Daddr/Sport/Dport
// ND        parseNdisc(buf, p, out: NdMessage), buildNeighborSolicit/buildNeighborAdvert/
//           buildUnsolicitedNeighborAdvert, solicitedNodeMulticast, ipv6MulticastMac
// GSO       gsoSegment6(buf, off, len, l3, l4, l4HdrLen, dst, dstOffs, dstLens, slotSize): count|-1
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
export * from './ipv6.ts';
export * from './checksum6.ts';
export * from './parse6.ts';
export * from './rewrite6.ts';
export * from './ip6ip6.ts';
export * from './icmp6.ts';
export * from './ndisc.ts';
export * from './gso6.ts';
