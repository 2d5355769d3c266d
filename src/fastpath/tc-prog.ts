// The fast path's tcx ingress program: for an established direction with a map entry, the rewrite TS decided.
//
// An executor only: it parses fixed offsets, looks up the entry TypeScript installed and carries it out
// (docs/fastpath.md). Everything it is not sure about is punted: returned with the `punt` verdict,
// so the frame goes the way it goes without the fast path (the packet socket has its copy already).
import { Asm, ALU, FP, JMP, R0, R1, R2, R3, R4, R5, R6, R7, R8, R9, SZ } from './asm.ts';
import { KEY, METHOD, VALUE, VFLAG } from './layout.ts';

/** tc verdicts (linux/pkt_cls.h; the tcx names alias them). */
export const TC_ACT = { NEXT: -1, OK: 0, SHOT: 2, REDIRECT: 7 } as const;

/** struct __sk_buff offsets read here (linux/bpf.h, stable uapi). */
export const SKB = { LEN: 0, VLAN_PRESENT: 20, DATA: 76, DATA_END: 80, GSO_SEGS: 164, GSO_SIZE: 176, SIZE: 192 } as const;

/** Helper ids (enum bpf_func_id). */
const FN = { MAP_LOOKUP: 1, KTIME_GET_NS: 5, SKB_STORE_BYTES: 9, SKB_LOAD_BYTES: 26, L3_CSUM_REPLACE: 10, L4_CSUM_REPLACE: 11, REDIRECT: 23, CSUM_DIFF: 28, SKB_ADJUST_ROOM: 50 } as const;
/** Helper flags. */
const F_PSEUDO_HDR = 0x10;
const F_MARK_MANGLED_0 = 0x20;
const ADJ_ROOM_MAC = 1;
const F_ADJ_ROOM_FIXED_GSO = 1;
const F_ADJ_ROOM_ENCAP_L3_IPV4 = 2;

/** Frame offsets: Ethernet (14) + IPv4 without options (20). */
const ETH = 14;
const IP = ETH;
const IP_TOS = IP + 1;
const IP_TOTLEN = IP + 2;
const IP_FRAG = IP + 6;
const IP_TTL = IP + 8;
const IP_CSUM = IP + 10;
const IP_SADDR = IP + 12;
const IP_DADDR = IP + 16;
const L4 = IP + 20;
const TCP_DOFF = L4 + 12;
const TCP_FLAGS = L4 + 13;

/** Stack slots (offsets from the frame pointer). */
const S_KEY = -16; // KEY.SIZE bytes
const S_OUTER = -40; // 20-byte outer IPv4 header (TUN)
const S_TMP = -48; // 4-byte source for bpf_skb_store_bytes
const S_LEN = -52; // the IP total length on entry (the byte counter counts the packet as received)
// The socket filter's copy of L4 + 20 bytes of headers: ≡ 2 (mod 4), so the 32-bit loads of the
// addresses and ports (frame offsets 26, 30, 34) are aligned, as the verifier requires on the stack.
const S_HDR = -114;

/** What the program is built for. */
export interface TcProgOptions {
  /** The fd of the fast-path map (layout.ts). */
  mapFd: number;
  /** The interface's MAC: frames for another destination MAC are punted (the TS path drops them). */
  mac: Uint8Array;
  /** Verdict for punted frames: TC_ACT.SHOT when the packet socket serves the interface (kernelDrop). */
  punt: number;
}


/** Loads r8 = data, r9 = data_end and punts unless `need` bytes are there. Packet pointers die at every helper that may change the packet, hence a reload before each use. */
function loadPacket(a: Asm, need: number): void {
  a.ldx(SZ.W, R8, R6, SKB.DATA).ldx(SZ.W, R9, R6, SKB.DATA_END);
  a.mov(R1, R8).addi(R1, need).jmp(JMP.JGT, R1, { reg: R9 }, 'punt');
}

/** Calls a helper and sends the frame to `fail` when it answers non-zero. */
function callOk(a: Asm, fn: number): void {
  a.call(fn).jmp(JMP.JNE, R0, 0, 'fail');
}

/**
 * Rewrites one address (`field`: IP_SADDR/IP_DADDR, old value at stack `oldAt`) to the value's ADDR,
 * then one port (`portField`, old at `oldPortAt`) to the value's PORT: L4 checksum first (pseudo-header
 * for the address), then the IP checksum, then the bytes. Equal old and new values are left alone,
 * as the TS path does (an identity replace could turn a 0xffff checksum into 0).
 */
function natRewrite(a: Asm, tcp: boolean, field: number, oldAt: number, portField: number, oldPortAt: number, tag: string): void {
  const csum = L4 + (tcp ? 16 : 6);
  const mangled = tcp ? 0 : F_MARK_MANGLED_0;
  a.ldx(SZ.W, R8, FP, oldAt).ldx(SZ.W, R9, R7, VALUE.ADDR);
  a.jmp32(JMP.JEQ, R8, { reg: R9 }, `${tag}_port`);
  a.mov(R1, R6).movi(R2, csum).mov(R3, R8).mov(R4, R9).movi(R5, F_PSEUDO_HDR | mangled | 4);
  callOk(a, FN.L4_CSUM_REPLACE);
  a.mov(R1, R6).movi(R2, IP_CSUM).mov(R3, R8).mov(R4, R9).movi(R5, 4);
  callOk(a, FN.L3_CSUM_REPLACE);
  a.stx(SZ.W, FP, S_TMP, R9);
  a.mov(R1, R6).movi(R2, field).mov(R3, FP).addi(R3, S_TMP).movi(R4, 4).movi(R5, 0);
  callOk(a, FN.SKB_STORE_BYTES);
  a.label(`${tag}_port`);
  a.ldx(SZ.H, R8, FP, oldPortAt).ldx(SZ.H, R9, R7, VALUE.PORT);
  a.jmp32(JMP.JEQ, R8, { reg: R9 }, `${tag}_done`);
  // No pseudo-header flag: a partial checksum does not cover the ports yet, so it is left as it is.
  a.mov(R1, R6).movi(R2, csum).mov(R3, R8).mov(R4, R9).movi(R5, mangled | 2);
  callOk(a, FN.L4_CSUM_REPLACE);
  a.stx(SZ.H, FP, S_TMP, R9);
  a.mov(R1, R6).movi(R2, portField).mov(R3, FP).addi(R3, S_TMP).movi(R4, 2).movi(R5, 0);
  callOk(a, FN.SKB_STORE_BYTES);
  a.label(`${tag}_done`);
  a.ja('forward_ttl');
}

/** How the classification reads the frame: tc has direct packet access; a socket filter has not. */
type Access = 'direct' | 'copy';

/**
 * Emits what both programs share: parse, key, lookup, and every check the executor makes before it
 * acts. Falls through with r6 = ctx and r7 = the entry when the executor will act; jumps to `punt`
 * otherwise. The socket filter (sock-filter.ts) runs this same code, so the packet socket refuses
 * exactly the frames the tcx program carries: a frame is never refused by one and punted by the other.
 * `direct`: reads through r8 = data (bounds against r9 = data_end); `copy`: bpf_skb_load_bytes copies
 * the headers to the stack at S_HDR first.
 */
export function emitClassify(a: Asm, o: { mapFd: number; mac: Uint8Array }, access: Access): void {
  const direct = access === 'direct';
  const ld = (size: Parameters<Asm['ldx']>[0], dst: number, off: number): Asm => a.ldx(size, dst, direct ? R8 : FP, direct ? off : S_HDR + off);
  /** Makes bytes [from, to) readable (direct: checks them; copy: copies them), or punts. Clobbers r1–r5 when copying. */
  const need = (from: number, to: number): void => {
    if (direct) {
      a.ldx(SZ.W, R8, R6, SKB.DATA).ldx(SZ.W, R9, R6, SKB.DATA_END);
      a.mov(R1, R8).addi(R1, to).jmp(JMP.JGT, R1, { reg: R9 }, 'punt');
    } else {
      a.mov(R1, R6).movi(R2, from).mov(R3, FP).addi(R3, S_HDR + from).movi(R4, to - from).call(FN.SKB_LOAD_BYTES);
      a.jmp(JMP.JNE, R0, 0, 'punt');
    }
  };
  a.mov(R6, R1);
  // A tag the device took out into metadata: the TS path drops VLAN frames, so they are not ours.
  a.ldx(SZ.W, R2, R6, SKB.VLAN_PRESENT).jmp(JMP.JNE, R2, 0, 'punt');
  need(0, L4);
  // For this interface's MAC only (broadcast and other hosts' frames are the TS path's business).
  for (const at of [0, 2, 4]) ld(SZ.H, R2, at).jmp32(JMP.JNE, R2, o.mac[at]! | (o.mac[at + 1]! << 8), 'punt');
  // IPv4, no options, not a fragment (MF clear, offset 0; DF may be set).
  ld(SZ.H, R2, 12).jmp32(JMP.JNE, R2, 0x0008, 'punt');
  ld(SZ.B, R2, IP).jmp32(JMP.JNE, R2, 0x45, 'punt');
  ld(SZ.H, R2, IP_FRAG).alu32(ALU.AND, R2, 0xff3f).jmp32(JMP.JNE, R2, 0, 'punt');
  // What the TS path's parse drops as malformed is not carried either: a header checksum that does
  // not verify (the sum of its ten words, folded, is 0xffff; byte order does not matter to it), and a
  // total length beyond the frame (bytes past it are Ethernet padding). skb->len counts from the
  // Ethernet header in both programs (tc ingress and a raw packet socket's filter push it back).
  a.movi(R3, 0);
  for (let w = 0; w < 20; w += 2) ld(SZ.H, R2, IP + w).alu64(ALU.ADD, R3, { reg: R2 });
  for (let k = 0; k < 2; k++) a.mov(R2, R3).alu64(ALU.RSH, R2, 16).alu64(ALU.AND, R3, 0xffff).alu64(ALU.ADD, R3, { reg: R2 });
  a.jmp(JMP.JNE, R3, 0xffff, 'punt');
  ld(SZ.H, R3, IP_TOTLEN).toBe(R3, 16).addi(R3, ETH);
  a.ldx(SZ.W, R2, R6, SKB.LEN).jmp(JMP.JGT, R3, { reg: R2 }, 'punt');
  // TCP without SYN/FIN/RST (state changes are the TS state machine's) or UDP, header in linear data.
  ld(SZ.B, R2, IP + 9);
  a.jmp32(JMP.JEQ, R2, 6, 'c_tcp');
  a.jmp32(JMP.JNE, R2, 17, 'punt');
  need(L4, L4 + 8);
  // The UDP length: at least its header, within the datagram (which also makes total length ≥ 28).
  ld(SZ.H, R3, IP_TOTLEN).toBe(R3, 16);
  ld(SZ.H, R2, L4 + 4).toBe(R2, 16).jmp(JMP.JLT, R2, 8, 'punt');
  a.addi(R2, 20).jmp(JMP.JGT, R2, { reg: R3 }, 'punt');
  a.ja('c_key');
  a.label('c_tcp');
  need(L4, L4 + 20);
  // The data offset: at least 5 words, the header within the datagram (total length ≥ 40).
  ld(SZ.H, R3, IP_TOTLEN).toBe(R3, 16);
  ld(SZ.B, R2, TCP_DOFF).alu32(ALU.RSH, R2, 4).alu32(ALU.LSH, R2, 2).jmp(JMP.JLT, R2, 20, 'punt');
  a.addi(R2, 20).jmp(JMP.JGT, R2, { reg: R3 }, 'punt');
  ld(SZ.B, R2, TCP_FLAGS).jmp32(JMP.JSET, R2, 0x07, 'punt');
  // The key: addresses and ports straight from the headers, protocol, three zero bytes.
  a.label('c_key');
  ld(SZ.W, R2, IP_SADDR).stx(SZ.W, FP, S_KEY + KEY.SADDR, R2);
  ld(SZ.W, R2, IP_DADDR).stx(SZ.W, FP, S_KEY + KEY.DADDR, R2);
  ld(SZ.W, R2, L4).stx(SZ.W, FP, S_KEY + KEY.SPORT, R2);
  ld(SZ.B, R2, IP + 9).stx(SZ.W, FP, S_KEY + KEY.PROTO, R2);
  a.ldMap(R1, o.mapFd).mov(R2, FP).addi(R2, S_KEY).call(FN.MAP_LOOKUP);
  a.jmp(JMP.JEQ, R0, 0, 'punt');
  a.mov(R7, R0);

  // What the TS path would refuse or answer itself, and entries this program does not understand.
  if (direct) need(0, L4 + 8);
  a.ldx(SZ.B, R2, R7, VALUE.FLAGS).jmp32(JMP.JSET, R2, ~VFLAG.FORWARD, 'punt');
  a.jmp32(JMP.JNE, R2, VFLAG.FORWARD, 'c_ttl_ok');
  ld(SZ.B, R2, IP_TTL).jmp32(JMP.JLE, R2, 1, 'punt');
  a.label('c_ttl_ok');
  a.ldx(SZ.B, R2, R7, VALUE.METHOD);
  a.jmp32(JMP.JEQ, R2, 0, 'punt');
  a.jmp32(JMP.JGT, R2, METHOD.TUN, 'punt');
  a.jmp32(JMP.JNE, R2, METHOD.TUN, 'c_act');
  // TUN: the MTU rule (a packet, or each GSO segment, + 20 must fit the egress MTU).
  ld(SZ.H, R3, IP_TOTLEN).toBe(R3, 16); // host-order total length
  a.ldx(SZ.W, R4, R6, SKB.GSO_SIZE);
  a.jmp(JMP.JEQ, R4, 0, 'c_tun_mtu');
  // A GSO skb: TCP only (bpf_skb_adjust_room refuses other GSO); its segments are IP + TCP header + gso_size.
  a.ldx(SZ.B, R2, FP, S_KEY + KEY.PROTO).jmp32(JMP.JNE, R2, 6, 'punt');
  if (direct) a.mov(R1, R8).addi(R1, L4 + 20).jmp(JMP.JGT, R1, { reg: R9 }, 'punt');
  ld(SZ.B, R3, TCP_DOFF).alu32(ALU.RSH, R3, 4).alu32(ALU.LSH, R3, 2);
  a.alu64(ALU.ADD, R3, { reg: R4 }).addi(R3, 20);
  a.label('c_tun_mtu');
  a.addi(R3, 20).ldx(SZ.H, R4, R7, VALUE.MTU).jmp(JMP.JGT, R3, { reg: R4 }, 'punt');
  a.label('c_act');
}

/** Builds the tcx program. */
export function buildTcProgram(o: TcProgOptions): Uint8Array {
  if (o.mac.length < 6) throw new RangeError('mac must be 6 bytes');
  const a = new Asm();
  emitClassify(a, o, 'direct');
  // The byte counter counts IP total length, as the TS path does (Ethernet padding excluded).
  loadPacket(a, L4);
  a.ldx(SZ.H, R2, R8, IP_TOTLEN).toBe(R2, 16).stx(SZ.W, FP, S_LEN, R2);
  a.ldx(SZ.B, R2, R7, VALUE.METHOD);
  a.jmp32(JMP.JEQ, R2, METHOD.NAT_IN, 'nat_in');
  a.jmp32(JMP.JEQ, R2, METHOD.NAT_OUT, 'nat_out');
  a.jmp32(JMP.JEQ, R2, METHOD.DR, 'macs');
  a.ja('tun');

  // NAT: one code path per protocol, so offsets and flags are immediates.
  a.label('nat_in');
  a.ldx(SZ.B, R2, FP, S_KEY + KEY.PROTO).jmp32(JMP.JEQ, R2, 17, 'nat_in_udp');
  natRewrite(a, true, IP_DADDR, S_KEY + KEY.DADDR, L4 + 2, S_KEY + KEY.DPORT, 'nat_in_tcp');
  a.label('nat_in_udp');
  natRewrite(a, false, IP_DADDR, S_KEY + KEY.DADDR, L4 + 2, S_KEY + KEY.DPORT, 'nat_in_udp_');
  a.label('nat_out');
  a.ldx(SZ.B, R2, FP, S_KEY + KEY.PROTO).jmp32(JMP.JEQ, R2, 17, 'nat_out_udp');
  natRewrite(a, true, IP_SADDR, S_KEY + KEY.SADDR, L4, S_KEY + KEY.SPORT, 'nat_out_tcp');
  a.label('nat_out_udp');
  natRewrite(a, false, IP_SADDR, S_KEY + KEY.SADDR, L4, S_KEY + KEY.SPORT, 'nat_out_udp_');

  // FORWARD path: TTL − 1 with the header checksum (checked > 1 above).
  a.label('forward_ttl');
  a.ldx(SZ.B, R2, R7, VALUE.FLAGS).jmp32(JMP.JNE, R2, VFLAG.FORWARD, 'macs');
  loadPacket(a, L4);
  a.ldx(SZ.H, R3, R8, IP_TTL).mov(R4, R3).addi(R4, -1); // (ttl | proto << 8) − 1: only the TTL byte changes
  a.ldx(SZ.B, R9, R8, IP_TTL).addi(R9, -1).stx(SZ.B, FP, S_TMP, R9);
  a.mov(R1, R6).movi(R2, IP_CSUM).movi(R5, 2);
  callOk(a, FN.L3_CSUM_REPLACE);
  a.mov(R1, R6).movi(R2, IP_TTL).mov(R3, FP).addi(R3, S_TMP).movi(R4, 1).movi(R5, 0);
  callOk(a, FN.SKB_STORE_BYTES);
  a.ja('macs');

  // TUN (the MTU rule was checked): an outer header DIP → RIP in front of the IP header.
  a.label('tun');
  loadPacket(a, L4 + 8);
  // Outer header on the stack, as little-endian words of its bytes.
  // Word 0: version/IHL 0x45, TOS of the inner header, total length + 20 (network order).
  a.ldx(SZ.H, R3, R8, IP_TOTLEN).toBe(R3, 16).addi(R3, 20).toBe(R3, 16).alu32(ALU.LSH, R3, 16);
  a.ldx(SZ.B, R2, R8, IP_TOS).alu32(ALU.LSH, R2, 8).alu32(ALU.OR, R3, { reg: R2 }).alu32(ALU.OR, R3, 0x45);
  a.stx(SZ.W, FP, S_OUTER, R3);
  // Word 1: IP ID from the entry's packet count (any value is right with DF; unique enough without),
  // DF copied from the inner header, fragment offset 0.
  a.ldx(SZ.B, R3, R8, IP_FRAG).alu32(ALU.AND, R3, 0x40).alu32(ALU.LSH, R3, 16);
  a.ldx(SZ.H, R2, R7, VALUE.PACKETS).alu32(ALU.OR, R3, { reg: R2 });
  a.stx(SZ.W, FP, S_OUTER + 4, R3);
  // Word 2: TTL 64, protocol 4 (IPIP), checksum 0 for now; words 3, 4: DIP, RIP.
  a.st(SZ.W, FP, S_OUTER + 8, 64 | (4 << 8));
  a.ldx(SZ.W, R2, R7, VALUE.TUN_SADDR).stx(SZ.W, FP, S_OUTER + 12, R2);
  a.ldx(SZ.W, R2, R7, VALUE.TUN_DADDR).stx(SZ.W, FP, S_OUTER + 16, R2);
  a.movi(R1, 0).movi(R2, 0).mov(R3, FP).addi(R3, S_OUTER).movi(R4, 20).movi(R5, 0).call(FN.CSUM_DIFF);
  for (let i = 0; i < 2; i++) a.mov(R2, R0).alu64(ALU.RSH, R2, 16).alu64(ALU.AND, R0, 0xffff).alu64(ALU.ADD, R0, { reg: R2 });
  a.alu32(ALU.XOR, R0, 0xffff).stx(SZ.H, FP, S_OUTER + 10, R0);
  // Room for it, as an IPv4-in-IPv4 encapsulation (the skb learns its inner headers, a GSO skb stays
  // GSO with its gso_size: the segments are the ones the TS path would cut). Failing here changes
  // nothing yet, so the frame is punted.
  a.mov(R1, R6).movi(R2, 20).movi(R3, ADJ_ROOM_MAC).movi(R4, F_ADJ_ROOM_ENCAP_L3_IPV4 | F_ADJ_ROOM_FIXED_GSO).call(FN.SKB_ADJUST_ROOM);
  a.jmp(JMP.JNE, R0, 0, 'punt');
  a.mov(R1, R6).movi(R2, IP).mov(R3, FP).addi(R3, S_OUTER).movi(R4, 20).movi(R5, 0);
  callOk(a, FN.SKB_STORE_BYTES);

  // The MACs tsvs resolved (next hop, egress interface), the counters, and out.
  a.label('macs');
  a.mov(R1, R6).movi(R2, 0).mov(R3, R7).addi(R3, VALUE.DMAC).movi(R4, 12).movi(R5, 0);
  callOk(a, FN.SKB_STORE_BYTES);
  a.movi(R2, 1).atomicAdd64(R7, VALUE.PACKETS, R2);
  a.ldx(SZ.W, R2, FP, S_LEN).atomicAdd64(R7, VALUE.BYTES, R2);
  a.call(FN.KTIME_GET_NS).stx(SZ.DW, R7, VALUE.LAST_SEEN, R0);
  a.ldx(SZ.W, R1, R7, VALUE.IFINDEX).movi(R2, 0).call(FN.REDIRECT);
  a.exit();

  a.label('punt');
  a.movi(R0, o.punt).exit();
  // A helper refused after the frame was partly rewritten: it cannot go anywhere as it is.
  a.label('fail');
  a.movi(R0, TC_ACT.SHOT).exit();
  return a.bytes();
}
