// The kernel's connection-sync protocol version 1 on the wire (ip_vs_sync.c): message header, conn entries, options.

import { readU16 as rd16, readU32 as rd32, writeU16 as wr16, writeU32 as wr32 } from '../../packet/checksum.ts';

/** Default group 224.0.0.81 and port 8848 (IP_VS_SYNC_GROUP / IP_VS_SYNC_PORT). */
export const SYNC_GROUP = 0xe0000051;
export const SYNC_PORT = 8848;
/** SYNC_PROTO_VER. */
export const SYNC_PROTO_VER = 1;
/** struct ip_vs_sync_mesg. */
export const MESG_HDR_LEN = 8;
/** struct ip_vs_sync_v4 / ip_vs_sync_v6. */
export const CONN_V4_LEN = 36;
export const CONN_V6_LEN = 72;
/** struct ip_vs_sync_conn_options: in_seq and out_seq, three be32 each. */
export const SEQ_OPT_LEN = 24;
/** IPv4 + UDP header: what the kernel subtracts from the MTU for sync_maxlen. */
export const SYNC_HDR_OVERHEAD = 28;

const STYPE_F_INET6 = 1;
const SVER_SHIFT = 12;
const SVER_MASK = 0x0fff;
const OPT_SEQ_DATA = 1;
const OPT_PE_DATA = 2;
const OPT_PE_NAME = 3;
/** IPVS_OPT_F_PARAM: an option with this bit set may be skipped when unknown. */
const OPT_F_PARAM = 1 << (7 - 1);
const PEDATA_MAXLEN = 255;
const PENAME_MAXLEN = 16;

/** Why a received sync message (or one entry of it) was not used; index into the receive counters. */
export const SR = {
  /** Shorter than a header. */
  SHORT: 0,
  /** The header's size is not the datagram's length. */
  BAD_SIZE: 1,
  /** syncid differs from ours (ours non-zero). */
  SYNCID: 2,
  /** Not a version-1 message (version 0 is not accepted). */
  VERSION: 3,
  /** An entry runs past the message, or nr_conns claims more entries than there are. */
  TRUNCATED: 4,
  /** An entry's own version bits are not 0. */
  ENTRY_VERSION: 5,
  /** An entry's type, size or options do not decode. */
  BAD_ENTRY: 6,
  /** Bytes left over after the last entry nr_conns announced. */
  TRAILING: 7,
  // Entry-level: the entry is skipped, the rest of the message used.
  IPV6: 8,
  PROTOCOL: 9,
  STATE: 10,
  /** An unknown mandatory option, or persistence-engine data (no engines here). */
  OPTION: 11,
  /** No local service and real server match the entry. */
  NO_DEST: 12,
  TABLE_FULL: 13,
  /** An expiry notice for a conn that was already replaced (the kernel ignores it too). */
  STALE: 14,
  /** A datagram tsvsd itself sent, seen again (its source is one of our addresses). */
  OWN: 15,
  /** Unicast to our address, or a UDP checksum that fails. */
  BAD_DATAGRAM: 16,
  /** The entry names a conn this director scheduled itself (no SYNC flag): sync never touches those. */
  LOCAL: 17,
  /** Synced conns already fill their share of the table (sync_conn_share). */
  SHARE_FULL: 18,
  /** A non-zero fwmark: tsvs has no fwmark services, so no local service can match it. */
  FWMARK: 19,
  /** A template with a client port: tsvs's templates have none (only persistence engines' do). */
  TEMPLATE: 20,
  /** Kernel interface: more received messages waiting for the data plane than RELAY_RX_MAX (a flood). */
  QUEUE_FULL: 21,
  /** Kernel interface: the source is on none of the interface's prefixes (another interface's datagram). */
  OTHER_IF: 22,
  /** Longer than the backup's sync_maxlen: the kernel reads into a buffer that long and drops the rest. */
  TOO_LONG: 23,
  /** An IP fragment of a datagram for the sync group and port (tsvs does not reassemble; keep sync_maxlen within the MTU). */
  FRAGMENT: 24,
  COUNT: 25,
} as const;

export const SR_NAMES: readonly string[] = [
  'short', 'bad_size', 'syncid', 'version', 'truncated', 'entry_version', 'bad_entry', 'trailing',
  'ipv6', 'protocol', 'state', 'option', 'no_dest', 'table_full', 'stale', 'own', 'bad_datagram',
  'local', 'share_full', 'fwmark', 'template',
  'queue_full', 'other_interface', 'too_long', 'fragment',
];

/** One decoded conn entry; reused for every entry (never allocated per message). */
export class SyncConn {
  ipv6 = false;
  proto = 0;
  flags = 0;
  state = 0;
  cport = 0;
  vport = 0;
  dport = 0;
  fwmark = 0;
  /** Seconds. */
  timeout = 0;
  caddr = 0;
  vaddr = 0;
  daddr = 0;
  hasSeq = false;
  /** init_seq, delta, previous_delta of in_seq then out_seq. */
  readonly seq = new Uint32Array(6);
  peDataLen = 0;
  peNameLen = 0;
}

/** Starts a message at `at` (ip_vs_sync_buff_create): reserved 0, syncid, size = header, 0 conns, version 1. */
export function writeMesgHeader(b: Uint8Array, at: number, syncid: number): void {
  b[at] = 0;
  b[at + 1] = syncid & 0xff;
  wr16(b, at + 2, MESG_HDR_LEN);
  b[at + 4] = 0;
  b[at + 5] = SYNC_PROTO_VER;
  b[at + 6] = 0;
  b[at + 7] = 0;
}

/** Bytes an IPv4 entry takes (without padding): 36, plus 26 with sequence data. */
export function connEntryLen(withSeq: boolean): number {
  return CONN_V4_LEN + (withSeq ? SEQ_OPT_LEN + 2 : 0);
}

/**
 * Appends one IPv4 entry to the message that starts at `m`, whose header says how long it is: the
 * 4-byte alignment padding the kernel puts before an entry, then the entry; updates size and
 * nr_conns. `seq` (six words) only when the conn does sequence adjustment. Returns the new size.
 * Flags go out without HASHED, as ip_vs_sync_conn sends them. The caller checks that it fits.
 */
export function appendConnV4(b: Uint8Array, m: number, proto: number, flags: number, state: number, cport: number,
  vport: number, dport: number, fwmark: number, timeout: number, caddr: number, vaddr: number, daddr: number,
  seq: Uint32Array | null): number {
  let size = rd16(b, m + 2);
  const pad = (4 - size) & 3;
  for (let i = 0; i < pad; i++) b[m + size + i] = 0;
  size += pad;
  const len = connEntryLen(seq !== null);
  const p = m + size;
  b[p] = 0;
  b[p + 1] = proto;
  wr16(b, p + 2, len & SVER_MASK);
  wr32(b, p + 4, (flags & ~0x40) >>> 0);
  wr16(b, p + 8, state);
  wr16(b, p + 10, cport);
  wr16(b, p + 12, vport);
  wr16(b, p + 14, dport);
  wr32(b, p + 16, fwmark);
  wr32(b, p + 20, timeout);
  wr32(b, p + 24, caddr);
  wr32(b, p + 28, vaddr);
  wr32(b, p + 32, daddr);
  if (seq !== null) {
    b[p + 36] = OPT_SEQ_DATA;
    b[p + 37] = SEQ_OPT_LEN;
    for (let i = 0; i < 6; i++) wr32(b, p + 38 + i * 4, seq[i]!);
  }
  size += len;
  wr16(b, m + 2, size);
  b[m + 4] = b[m + 4]! + 1;
  return size;
}

/**
 * Decodes one entry's options [p, end) into `c` (ip_vs_proc_sync_conn's option loop). Returns 0 when
 * the entry is usable, SR.OPTION when it must be skipped, -1 when the message is corrupt.
 */
function decodeOptions(b: Uint8Array, p: number, end: number, c: SyncConn): number {
  c.hasSeq = false;
  c.peDataLen = 0;
  c.peNameLen = 0;
  let seen = 0;
  while (p < end) {
    if (p + 2 > end) return -1;
    const ptype = b[p]!;
    const plen = b[p + 1]!;
    p += 2;
    if (plen === 0 || p + plen > end) return -1;
    switch (ptype & ~OPT_F_PARAM) {
      case OPT_SEQ_DATA:
        if (plen !== SEQ_OPT_LEN || (seen & 1) !== 0) return -1;
        seen |= 1;
        c.hasSeq = true;
        for (let i = 0; i < 6; i++) c.seq[i] = rd32(b, p + i * 4);
        break;
      case OPT_PE_DATA:
        if (plen > PEDATA_MAXLEN || (seen & 2) !== 0) return -1;
        seen |= 2;
        c.peDataLen = plen;
        break;
      case OPT_PE_NAME:
        if (plen > PENAME_MAXLEN || (seen & 4) !== 0) return -1;
        seen |= 4;
        c.peNameLen = plen;
        break;
      default:
        // The kernel stops at an unknown mandatory option and skips the entry.
        if ((ptype & OPT_F_PARAM) === 0) return SR.OPTION;
    }
    p += plen;
  }
  // Persistence-engine data needs an engine (sip) tsvs does not have: the kernel skips such entries too.
  if (c.peDataLen !== 0) return SR.OPTION;
  return 0;
}

/** Decodes the fixed part of the entry at p (type already checked) into `c`. */
function decodeFixed(b: Uint8Array, p: number, c: SyncConn): void {
  c.proto = b[p + 1]!;
  c.flags = rd32(b, p + 4);
  c.state = rd16(b, p + 8);
  c.cport = rd16(b, p + 10);
  c.vport = rd16(b, p + 12);
  c.dport = rd16(b, p + 14);
  c.fwmark = rd32(b, p + 16);
  c.timeout = rd32(b, p + 20);
  if (!c.ipv6) {
    c.caddr = rd32(b, p + 24);
    c.vaddr = rd32(b, p + 28);
    c.daddr = rd32(b, p + 32);
  } else {
    c.caddr = 0;
    c.vaddr = 0;
    c.daddr = 0;
  }
}

/**
 * Checks a whole message before anything of it is used (the kernel applies entries as it goes and
 * stops at a corrupt one; tsvs refuses the message so a bad one installs nothing). Returns -1 when
 * the message may be used, else the SR reason it is dropped for.
 */
export function checkMessage(b: Uint8Array, off: number, len: number, syncid: number): number {
  if (len < 4) return SR.SHORT;
  if (rd16(b, off + 2) !== len) return SR.BAD_SIZE;
  if (syncid !== 0 && b[off + 1] !== syncid) return SR.SYNCID;
  if (len < MESG_HDR_LEN || b[off] !== 0 || b[off + 5] !== SYNC_PROTO_VER || b[off + 6] !== 0 || b[off + 7] !== 0) {
    return SR.VERSION;
  }
  const n = b[off + 4]!;
  const end = off + len;
  let p = off + MESG_HDR_LEN;
  for (let i = 0; i < n; i++) {
    if (p + CONN_V4_LEN > end) return SR.TRUNCATED;
    const vs = rd16(b, p + 2);
    const size = vs & SVER_MASK;
    if (p + size > end) return SR.TRUNCATED;
    if (vs >> SVER_SHIFT !== 0) return SR.ENTRY_VERSION;
    const type = b[p]!;
    if (type !== 0 && type !== STYPE_F_INET6) return SR.BAD_ENTRY;
    const fixed = type === STYPE_F_INET6 ? CONN_V6_LEN : CONN_V4_LEN;
    if (size < fixed) return SR.BAD_ENTRY;
    if (checkOptions(b, p + fixed, p + size) < 0) return SR.BAD_ENTRY;
    // The next entry starts 32-bit aligned; the last one is not padded.
    p += i + 1 < n ? (size + 3) & ~3 : size;
  }
  if (p !== end) return p > end ? SR.TRUNCATED : SR.TRAILING;
  return -1;
}

const probe = new SyncConn();

function checkOptions(b: Uint8Array, p: number, end: number): number {
  return decodeOptions(b, p, end, probe);
}

/**
 * Walks the entries of a message that `checkMessage` accepted, decoding each into `c` and calling
 * `use(c)` for the usable ones; the entry-level reasons (IPv6, protocol, state, option) are counted
 * in `counts` as the kernel's "single msg dropped". `validState(proto, state, template)` decides states.
 */
export function forEachConn(b: Uint8Array, off: number, len: number, c: SyncConn, counts: Float64Array,
  validState: (proto: number, state: number, template: boolean) => number, use: (c: SyncConn) => void): void {
  const n = b[off + 4]!;
  let p = off + MESG_HDR_LEN;
  for (let i = 0; i < n; i++) {
    const size = rd16(b, p + 2) & SVER_MASK;
    c.ipv6 = b[p] === STYPE_F_INET6;
    const fixed = c.ipv6 ? CONN_V6_LEN : CONN_V4_LEN;
    const r = decodeOptions(b, p + fixed, p + size, c);
    decodeFixed(b, p, c);
    p += (size + 3) & ~3;
    if (r !== 0) {
      counts[SR.OPTION]!++;
      continue;
    }
    if (c.ipv6) {
      counts[SR.IPV6]!++;
      continue;
    }
    const v = validState(c.proto, c.state, (c.flags & 0x1000) !== 0);
    if (v >= 0) {
      counts[v]!++;
      continue;
    }
    use(c);
  }
}
