// TCP sequence adjustment for FullNAT conns whose first client bytes were preceded by a PROXY header: insert, shift seq/ack/SACK, clamp MSS.
import { csumFold, csumPartialReplace32, csumReplace16, csumReplace32, pseudoSum, readU32, sum16, writeU32 } from '../packet/checksum.ts';
import { PF, type ParsedFrame } from '../packet/parse.ts';
import { ppLength, writePp } from './proxy-proto.ts';

/** Bytes of headroom the insertion may take in front of a frame (the director's HEADROOM). */
export const PP_MAX_GROW = 64;

/**
 * Per-conn state, columns indexed by conn slot like the ConnTable's. The PROXY header takes the
 * sequence numbers [isn+1, isn+1+len) of the stream the real server sees; the client's own bytes
 * follow. So, once the header went out: client → server seq += len (except a segment that starts at
 * isn+1: that is the first segment or its retransmission, which gets the header again in front and
 * keeps its seq); server → client ack and SACK edges −= len (an edge inside the header maps to
 * isn+1). The plan holds from the SYN on, so a later segment that overtakes a lost first one is
 * already placed behind the header. Timestamps are untouched: they do not count bytes.
 */
export class SeqAdj {
  /** The client's first data sequence number (ISN + 1). */
  readonly first: Uint32Array;
  /** Header length for this conn (0: no PROXY header). */
  readonly len: Uint8Array;
  /** PP version of the conn (proxy-proto.ts PP_*). */
  readonly version: Uint8Array;
  /** 1 once a header was inserted. */
  readonly sent: Uint8Array;
  /** Headers inserted (first segments and their retransmissions). */
  inserted = 0;
  /** First segments that could not take the header (no room): dropped, the client retransmits. */
  noRoom = 0;

  constructor(capacity: number) {
    this.first = new Uint32Array(capacity);
    this.len = new Uint8Array(capacity);
    this.version = new Uint8Array(capacity);
    this.sent = new Uint8Array(capacity);
  }

  /** A new conn's client SYN: remembers ISN + 1 and the header it will get. */
  init(c: number, synSeq: number, version: number, cip: number, cport: number, vip: number, vport: number): void {
    this.first[c] = (synSeq + 1) >>> 0;
    this.version[c] = version;
    this.len[c] = ppLength(version, cip, cport, vip, vport);
    this.sent[c] = 0;
  }
}

function put16(buf: Uint8Array, at: number, v: number): void {
  buf[at] = v >>> 8;
  buf[at + 1] = v & 0xff;
}

/** Replaces the 32-bit word at `at` in a TCP segment, keeping a complete checksum right (a partial one covers it later). */
function setWord(buf: Uint8Array, p: ParsedFrame, at: number, v: number): void {
  const old = readU32(buf, at);
  if (old === v) return;
  writeU32(buf, at, v);
  if ((p.flags & PF.CSUM_PARTIAL) !== 0) return;
  const ca = p.l4 + 16;
  put16(buf, ca, csumReplace32((buf[ca]! << 8) | buf[ca + 1]!, old, v));
}

/**
 * Client → real server, after the FullNAT rewrite. Inserts the PROXY header in front of the payload
 * of a segment starting at ISN+1 (moving the headers left into the headroom, so the payload stays
 * where it is), or shifts the seq of a later one. Returns the new frame start (p.frame when
 * unchanged), or -1 when the header could not be inserted (no headroom).
 */
export function seqAdjIn(sa: SeqAdj, c: number, buf: Uint8Array, p: ParsedFrame, cip: number, cport: number, vip: number,
  vport: number): number {
  const len = sa.len[c]!;
  if (len === 0) return p.frame;
  const l4 = p.l4;
  const seq = readU32(buf, l4 + 4);
  const first = sa.first[c]!;
  const data = l4 + p.l4HdrLen;
  const payload = p.ipEnd - data;
  if (seq === first && payload > 0) {
    if (p.frame < len || len > PP_MAX_GROW) {
      sa.noRoom++;
      return -1;
    }
    const nf = p.frame - len;
    buf.copyWithin(nf, p.frame, data);
    const at = data - len;
    writePp(buf, at, sa.version[c]!, cip, cport, vip, vport);
    // Offsets shift with the headers; the vnet header's csum_start is relative to the Ethernet header, so it holds.
    const l3 = p.l3 - len;
    const nl4 = l4 - len;
    const oldTot = (buf[l3 + 2]! << 8) | buf[l3 + 3]!;
    const newTot = oldTot + len;
    put16(buf, l3 + 2, newTot);
    put16(buf, l3 + 10, csumReplace16((buf[l3 + 10]! << 8) | buf[l3 + 11]!, oldTot, newTot));
    const segLen = p.ipEnd - nl4;
    if ((p.flags & PF.CSUM_PARTIAL) !== 0) {
      // The seed is the pseudo-header sum: only its length changed; the bytes are summed at transmit.
      const ca = nl4 + 16;
      put16(buf, ca, csumPartialReplace32((buf[ca]! << 8) | buf[ca + 1]!, segLen - len, segLen));
    } else {
      // An odd-length header moves the payload's byte alignment: sum the whole segment again (once per conn).
      buf[nl4 + 16] = 0;
      buf[nl4 + 17] = 0;
      const s = sum16(buf, nl4, p.ipEnd, pseudoSum(readU32(buf, l3 + 12), readU32(buf, l3 + 16), 6, segLen));
      put16(buf, nl4 + 16, ~csumFold(s) & 0xffff);
    }
    p.frame = nf;
    p.l3 = l3;
    p.l4 = nl4;
    p.totLen = newTot;
    sa.sent[c] = 1;
    sa.inserted++;
    return nf;
  }
  // Later bytes sit behind the header in the server's stream, even if the first segment is still to come.
  if (((seq - first) | 0) > 0) setWord(buf, p, l4 + 4, (seq + len) >>> 0);
  return p.frame;
}

/** Maps a real-server-side sequence number the server acknowledges back into the client's space. */
function unshift(v: number, first: number, len: number): number {
  const d = (v - first) | 0;
  if (d <= 0) return v;
  return d >= len ? (v - len) >>> 0 : first;
}

const TCPOPT_EOL = 0;
const TCPOPT_NOP = 1;
const TCPOPT_MSS = 2;
const TCPOPT_SACK = 5;

/**
 * Real server → client, after the FullNAT rewrite: the ACK number and SACK blocks move back by the
 * header's length; the MSS option of a SYN-ACK is lowered by it, so a client's full-sized first segment
 * still fits the path once the header is in front.
 */
export function seqAdjOut(sa: SeqAdj, c: number, buf: Uint8Array, p: ParsedFrame): void {
  const len = sa.len[c]!;
  if (len === 0) return;
  const l4 = p.l4;
  const flags = p.tcpFlags;
  const first = sa.first[c]!;
  if ((flags & 0x10) !== 0) setWord(buf, p, l4 + 8, unshift(readU32(buf, l4 + 8), first, len));
  const end = l4 + p.l4HdrLen;
  let o = l4 + 20;
  while (o < end) {
    const kind = buf[o]!;
    if (kind === TCPOPT_EOL) break;
    if (kind === TCPOPT_NOP) {
      o++;
      continue;
    }
    if (o + 1 >= end) break;
    const olen = buf[o + 1]!;
    if (olen < 2 || o + olen > end) break;
    if (kind === TCPOPT_MSS && olen === 4 && (flags & 0x12) === 0x12) {
      const mss = (buf[o + 2]! << 8) | buf[o + 3]!;
      if (mss > len + 536) {
        const nm = mss - len;
        put16(buf, o + 2, nm);
        if ((p.flags & PF.CSUM_PARTIAL) === 0) put16(buf, l4 + 16, csumReplace16((buf[l4 + 16]! << 8) | buf[l4 + 17]!, mss, nm));
      }
    } else if (kind === TCPOPT_SACK) {
      for (let b = o + 2; b + 8 <= o + olen; b += 8) {
        setWord(buf, p, b, unshift(readU32(buf, b), first, len));
        setWord(buf, p, b + 4, unshift(readU32(buf, b + 4), first, len));
      }
    }
    o += olen;
  }
}
