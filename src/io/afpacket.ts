// The AF_PACKET port: a TPACKET_V2 RX ring and sendmmsg TX on one interface, frames with vnet headers.
import { errnoName, IoError, nativeCall } from './errors.ts';
import { native, type NativeAfPacket } from './native.ts';
import { macString, type Port, type PortStats } from './port.ts';

/** Options of an AF_PACKET port; every field has a default that suits a director's interface. */
export interface AfPacketOptions {
  /** Put the interface in promiscuous mode while the port is open (a director owning a NIC wants it). */
  promisc?: boolean;
  /** RX ring slots (rounded up to whole 1 MB blocks of 15 slots). Default 256: ~17 MB of ring. */
  ringFrames?: number;
  /**
   * Bytes per ring slot. Default 65664 so a 64 KB GSO frame arrives whole in its slot. Smaller slots (e.g.
   * 2048: a 1 MB ring instead of 17 MB) still deliver big frames whole: the kernel queues them to the
   * socket too (PACKET_COPY_THRESH) and rxBurst reads them with recv(); `stats().rxCopied` counts them.
   */
  frameSize?: number;
  /** PACKET_QDISC_BYPASS (default true): TX goes straight to the driver. */
  qdiscBypass?: boolean;
  /** SO_SNDBUF(FORCE) bytes (default 4 MB) so a burst of 64 KB frames does not hit EAGAIN. */
  sndbuf?: number;
  /** Join PACKET_FANOUT group `fanout` (hash mode) so several workers share the interface. */
  fanout?: number;
  /** Send small frames through a mmapped TX ring (one send() per run) instead of sendmmsg. Default false. */
  txRing?: boolean;
  /**
   * Keep the kernel's own stack off the interface: a tcx ingress program drops every frame after packet
   * sockets (this port included) have seen it. What a director owning the interface wants: no IP
   * processing of frames it forwards itself, no kernel forwarding of them. Default false. If the kernel
   * cannot attach it (no tcx before Linux 6.6), the port opens anyway: see `kernelDrop`.
   */
  kernelDrop?: boolean;
}

/** Extra counters an AF_PACKET port keeps beyond PortStats. */
export interface AfPacketStats extends PortStats {
  /** Frames larger than a ring slot (GSO beyond 64 KB): cut short by the kernel, so dropped here. */
  rxTruncated: number;
  /** Frames larger than a small ring slot read whole from the socket queue (PACKET_COPY_THRESH). */
  rxCopied: number;
  /** Frames the kernel handed to the socket (PACKET_STATISTICS tp_packets), drops included. */
  kernelPackets: number;
  /** GSO frames sent through the qdisc socket because the device could not take them directly. */
  txGsoViaQdisc: number;
}

/** An AF_PACKET port bound to `ifname`. Opening throws IoError (EPERM/ENODEV/ENETDOWN/ESETUP/EINVAL). */
export class AfPacketPort implements Port {
  readonly kind = 'afpacket' as const;
  readonly mac: Uint8Array;
  readonly mtu: number;
  readonly maxFrame: number;
  readonly fd: number;
  /** The kernel's interface index. */
  readonly ifindex: number;
  /** Ring slots actually set up. */
  readonly ringFrames: number;
  /** The kernelDrop program is attached; `kernelDropError` says why not when it was asked for. */
  readonly kernelDrop: boolean;
  readonly kernelDropError: string | null;
  private readonly sock: NativeAfPacket;
  private closed = false;

  constructor(
    readonly ifname: string,
    opts: AfPacketOptions = {},
  ) {
    const { AfPacket } = nativeCall(() => native());
    this.sock = nativeCall(() => new AfPacket(ifname, { ...opts }));
    this.mac = new Uint8Array(this.sock.mac);
    this.mtu = this.sock.mtu;
    this.maxFrame = this.sock.maxFrame;
    this.fd = this.sock.fd;
    this.ifindex = this.sock.ifindex;
    this.ringFrames = this.sock.ringFrames;
    this.kernelDrop = this.sock.kernelDrop;
    this.kernelDropError = opts.kernelDrop && !this.kernelDrop ? `tcx ingress attach failed: ${errnoName(this.sock.kernelDropErrno)}` : null;
  }

  rxBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max: number): number {
    return this.sock.rxBurst(buf, offsets, lengths, max);
  }

  txBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    return this.sock.txBurst(buf, offsets, lengths, count);
  }

  wait(timeoutMs: number): boolean {
    return this.sock.wait(timeoutMs);
  }

  stats(): AfPacketStats {
    return this.sock.stats();
  }

  /** PACKET_ADD_MEMBERSHIP with PACKET_MR_MULTICAST on this port's socket: the NIC's filter takes `mac`. */
  mcAdd(mac: Uint8Array): void {
    const e = this.closed ? 9 : this.sock.multicast(mac, true);
    if (e !== 0) throw new IoError(e === 1 ? 'EPERM' : 'ESETUP', `${this.ifname}: PACKET_ADD_MEMBERSHIP ${macString(mac)}: ${errnoName(e)}`);
  }

  mcDel(mac: Uint8Array): void {
    if (!this.closed) this.sock.multicast(mac, false);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sock.close();
  }
}
