// The AF_XDP port: an XDP socket fed by a redirect program on the interface, frames with zeroed vnet headers.
//
// XDP carries no checksum or GSO state, so this port keeps the Port contract itself: on receive the
// vnet header is all zeros; on transmit, partial checksums are completed (completePartialChecksum) and
// GSO frames are cut into wire-sized frames (gsoSegment) here, in TypeScript, before the native ring
// sees them. docs/xdp.md has the measurements and what the kernel does with offloaded frames.
import { errnoName, IoError, nativeCall } from './errors.ts';
import { native } from './native.ts';
import { macString, VNET, VNET_HDR_LEN, type Port, type PortStats } from './port.ts';
import { completePartialChecksum } from '../packet/rewrite.ts';
import { gsoSegment } from '../packet/gso.ts';

/** Where the XDP program runs: 'drv' (native, in the driver), 'skb' (generic), 'auto' (drv, else skb). */
export type XdpMode = 'auto' | 'drv' | 'skb';

/** Options of an AF_XDP port. */
export interface XdpOptions {
  /** Attach mode; default 'auto', or the TSVS_XDP_MODE environment variable when set. */
  mode?: XdpMode;
  /** RX queue to bind (default 0; veth has one). */
  queue?: number;
  /** UMEM chunks of 4 KB (half receive, half transmit). Default 4096 (16 MB). */
  frames?: number;
  /** RX and TX ring entries, a power of two (default 1024). */
  ringSize?: number;
}

/** Extra counters an AF_XDP port keeps beyond PortStats. */
export interface XdpStats extends PortStats {
  /** XDP_STATISTICS rx_ring_full: the RX ring had no room (we were too slow). */
  rxRingFull: number;
  /** XDP_STATISTICS rx_fill_ring_empty_descs: no free chunk when a frame came in. */
  rxFillEmpty: number;
  /** XDP_STATISTICS rx_dropped: frames the kernel dropped for other reasons (e.g. longer than a chunk). */
  rxKernelDropped: number;
  rxInvalid: number;
  txInvalid: number;
  /** Frames longer than the caller's slot (never expected: slots are at least maxFrame). */
  rxTooBig: number;
  /** sendto() kicks, kicks the device pushed back on (EBUSY/ENOBUFS), other kick errors. */
  txKicks: number;
  txKickBusy: number;
  txKickErrors: number;
  /** GSO frames cut into wire-sized frames here, and the frames that made. */
  txGsoSegmented: number;
  txGsoSegments: number;
  /** Partial checksums completed here before transmit. */
  txCsumCompleted: number;
  /** Frames refused before the ring: GSO that could not be segmented, checksum offsets out of range. */
  txPrepDropped: number;
  /** Received frames recognised as carrying a partial checksum and marked NEEDS_CSUM. */
  rxCsumPartial: number;
}

interface NativeXdp {
  readonly fd: number;
  readonly ifindex: number;
  readonly mtu: number;
  readonly mac: Uint8Array;
  readonly maxFrame: number;
  readonly mode: 'drv' | 'skb';
  readonly zerocopy: boolean;
  /** errno of the refused driver-mode attach when 'auto' fell back to skb (0 otherwise). */
  readonly drvErrno: number;
  rxBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max: number): number;
  /** Sends frames first..first+count of the arrays (first defaults to 0). */
  txBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, first?: number): number;
  wait(timeoutMs: number): boolean;
  stats(): Omit<XdpStats, 'txGsoSegmented' | 'txGsoSegments' | 'txCsumCompleted' | 'txPrepDropped' | 'rxCsumPartial'>;
  close(): void;
}

interface XdpNative {
  Xdp: new (ifname: string, opts: XdpOptions) => NativeXdp;
  packetMcOpen(): number;
  packetMcChange(fd: number, ifindex: number, mac: Uint8Array, join: boolean): number;
  packetMcClose(fd: number): void;
}

// GSO segments one frame can become (64 KB / smallest sensible MSS); larger cuts are refused.
const MAX_SEGS = 128;

/** An AF_XDP port bound to queue `queue` of `ifname`. Opening throws IoError (EPERM/ENODEV/ENETDOWN/ESETUP/EINVAL). */
export class XdpPort implements Port {
  readonly kind = 'xdp' as const;
  readonly mac: Uint8Array;
  readonly mtu: number;
  /** What this port delivers: wire-sized frames only (a chunk minus the kernel's headroom). */
  readonly maxFrame: number;
  readonly fd: number;
  /** Where the program runs ('drv' native, 'skb' generic) and whether the socket is zero-copy. */
  readonly mode: 'drv' | 'skb';
  readonly zerocopy: boolean;
  readonly drvErrno: number;
  private readonly sock: NativeXdp;
  private closed = false;
  // Transmit staging for frames that need work: one wire-sized slot per segment, allocated once.
  private readonly slot: number;
  private readonly seg: Uint8Array;
  private readonly segOffs: Uint32Array;
  private readonly segLens: Uint32Array;
  private gsoSegmented = 0;
  private gsoSegments = 0;
  private csumCompleted = 0;
  private prepDropped = 0;
  private rxPartial = 0;
  /** A receive-less AF_PACKET socket holding this port's multicast joins (an AF_XDP socket cannot), -1 none yet. */
  private mcFd = -1;

  constructor(
    readonly ifname: string,
    opts: XdpOptions = {},
  ) {
    const envMode = process.env.TSVS_XDP_MODE;
    const mode = opts.mode ?? (envMode === 'drv' || envMode === 'skb' || envMode === 'auto' ? envMode : 'auto');
    const { Xdp } = nativeCall(() => native<XdpNative>());
    if (typeof Xdp !== 'function') throw new IoError('EINVAL', 'this build of the addon has no AF_XDP support');
    this.sock = nativeCall(() => new Xdp(ifname, { ...opts, mode }));
    this.mac = new Uint8Array(this.sock.mac);
    this.mtu = this.sock.mtu;
    this.maxFrame = this.sock.maxFrame;
    this.fd = this.sock.fd;
    this.mode = this.sock.mode;
    this.zerocopy = this.sock.zerocopy;
    this.drvErrno = this.sock.drvErrno;
    this.slot = (this.maxFrame + 63) & ~63;
    this.seg = new Uint8Array(this.slot * MAX_SEGS);
    this.segOffs = new Uint32Array(MAX_SEGS);
    this.segLens = new Uint32Array(MAX_SEGS);
    for (let i = 0; i < MAX_SEGS; i++) this.segOffs[i] = i * this.slot;
  }

  /**
   * Receives like any port, then restores what XDP lost: a TCP/UDP-over-IPv4 frame whose checksum field
   * holds exactly the folded pseudo-header sum was sent with a partial checksum (a local sender with
   * offloads on; measured in docs/xdp.md), so its header is marked NEEDS_CSUM as AF_PACKET would have
   * delivered it. A frame with a valid complete checksum that happens to match is harmless: completing
   * it gives back the same checksum.
   */
  rxBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max: number): number {
    const n = this.sock.rxBurst(buf, offsets, lengths, max);
    for (let i = 0; i < n; i++) if (markPartial(buf, offsets[i]!, lengths[i]!)) this.rxPartial++;
    return n;
  }

  /**
   * Sends `count` frames. Plain frames go to the ring as they are; a partial checksum is completed in
   * the caller's buffer first (the frame is on its way out, nobody reads it after), and a GSO frame is
   * segmented into staging slots and sent as its own run, so burst order is kept.
   */
  txBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    let i = 0;
    let sent = 0;
    while (i < count) {
      // Gather the run of frames that need nothing beyond a checksum completion.
      const start = i;
      while (i < count) {
        const off = offsets[i]!;
        if (buf[off + VNET.GSO_TYPE] !== VNET.GSO_NONE) break;
        if (buf[off + VNET.FLAGS] !== 0) {
          if ((buf[off + VNET.FLAGS]! & VNET.F_NEEDS_CSUM) !== 0) {
            if (!completePartialChecksum(buf, off, lengths[i]!)) break;
            this.csumCompleted++;
          }
          buf[off + VNET.FLAGS] = 0; // DATA_VALID means nothing on the wire
        }
        i++;
      }
      if (i > start) sent += this.sendRun(buf, offsets, lengths, start, i - start);
      if (i < count) {
        sent += this.sendOdd(buf, offsets[i]!, lengths[i]!);
        i++;
      }
    }
    return sent;
  }

  private sendRun(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, start: number, n: number): number {
    return this.sock.txBurst(buf, offsets, lengths, n, start);
  }

  // A GSO frame (or one whose checksum offsets are bad): segmented here, or dropped and counted.
  private sendOdd(buf: Uint8Array, off: number, len: number): number {
    if (buf[off + VNET.GSO_TYPE] === VNET.GSO_NONE) {
      this.prepDropped++;
      return 0;
    }
    const l = locateL4(buf, off, len);
    const made = l < 0 ? -1 : gsoSegment(buf, off, len, off + (l & 0xffff), off + (l >>> 16), tcpOrUdpHdrLen(buf, off + (l >>> 16), buf[off + (l & 0xffff) + 9]!), this.seg, this.segOffs, this.segLens, this.slot);
    if (made <= 0) {
      this.prepDropped++;
      return 0;
    }
    this.gsoSegmented++;
    this.gsoSegments += made;
    const sent = this.sock.txBurst(this.seg, this.segOffs, this.segLens, made);
    return sent === made ? 1 : 0;
  }

  wait(timeoutMs: number): boolean {
    return this.sock.wait(timeoutMs);
  }

  stats(): XdpStats {
    return {
      ...this.sock.stats(),
      txGsoSegmented: this.gsoSegmented,
      txGsoSegments: this.gsoSegments,
      txCsumCompleted: this.csumCompleted,
      txPrepDropped: this.prepDropped,
      rxCsumPartial: this.rxPartial,
    };
  }

  /**
   * The NIC filters multicast before XDP sees a frame, so a join goes to the device through an
   * AF_PACKET socket of its own (PACKET_MR_MULTICAST), opened on first use and closed with the port.
   */
  mcAdd(mac: Uint8Array): void {
    const n = native<XdpNative>();
    if (this.mcFd < 0) this.mcFd = nativeCall(() => n.packetMcOpen());
    const e = n.packetMcChange(this.mcFd, this.sock.ifindex, mac, true);
    if (e !== 0) throw new IoError(e === 1 ? 'EPERM' : 'ESETUP', `${this.ifname}: PACKET_ADD_MEMBERSHIP ${macString(mac)}: ${errnoName(e)}`);
  }

  mcDel(mac: Uint8Array): void {
    if (this.mcFd >= 0) native<XdpNative>().packetMcChange(this.mcFd, this.sock.ifindex, mac, false);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
    if (this.mcFd >= 0) native<XdpNative>().packetMcClose(this.mcFd);
    this.mcFd = -1;
  }
}

/**
 * Offsets (relative to the vnet header) of the IPv4 header and L4 header of an untagged or 802.1Q
 * IPv4 frame, packed as l3 | l4 << 16; -1 when the frame is not IPv4 with a plausible header.
 */
function locateL4(buf: Uint8Array, off: number, len: number): number {
  let l3 = VNET_HDR_LEN + 14;
  let type = (buf[off + VNET_HDR_LEN + 12]! << 8) | buf[off + VNET_HDR_LEN + 13]!;
  if (type === 0x8100) {
    type = (buf[off + VNET_HDR_LEN + 16]! << 8) | buf[off + VNET_HDR_LEN + 17]!;
    l3 += 4;
  }
  if (type !== 0x0800 || len < l3 + 20) return -1;
  const ihl = (buf[off + l3]! & 0x0f) * 4;
  if (ihl < 20 || len < l3 + ihl + 8) return -1;
  return l3 | ((l3 + ihl) << 16);
}

/**
 * Marks the frame at `off` NEEDS_CSUM (csum_start/offset set) when it is an unfragmented TCP or UDP
 * IPv4 packet whose checksum field equals the folded pseudo-header sum, the form a partial checksum
 * takes. Returns true when it marked the frame. Hot path: header reads only.
 */
export function markPartial(buf: Uint8Array, off: number, len: number): boolean {
  const l = locateL4(buf, off, len);
  if (l < 0) return false;
  const l3 = off + (l & 0xffff);
  const l4 = off + (l >>> 16);
  const proto = buf[l3 + 9]!;
  const field = proto === 6 ? 16 : proto === 17 ? 6 : -1;
  if (field < 0 || ((buf[l3 + 6]! & 0x3f) | buf[l3 + 7]!) !== 0) return false; // fragments never carry one
  const at = l4 + field;
  if (at + 2 > off + len) return false;
  const l4len = ((buf[l3 + 2]! << 8) | buf[l3 + 3]!) - (l4 - l3);
  if (l4len <= field + 1) return false;
  let sum = proto + l4len;
  for (let k = 12; k < 20; k += 2) sum += (buf[l3 + k]! << 8) | buf[l3 + k + 1]!;
  sum = (sum & 0xffff) + (sum >>> 16);
  sum = (sum & 0xffff) + (sum >>> 16);
  if (((buf[at]! << 8) | buf[at + 1]!) !== sum) return false;
  const start = l4 - off - VNET_HDR_LEN;
  buf[off + VNET.FLAGS] = VNET.F_NEEDS_CSUM;
  buf[off + VNET.CSUM_START] = start & 0xff;
  buf[off + VNET.CSUM_START + 1] = start >>> 8;
  buf[off + VNET.CSUM_OFFSET] = field;
  buf[off + VNET.CSUM_OFFSET + 1] = 0;
  return true;
}

function tcpOrUdpHdrLen(buf: Uint8Array, l4: number, proto: number): number {
  return proto === 6 ? (buf[l4 + 12]! >>> 4) * 4 : 8;
}
