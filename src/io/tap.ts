// TAP port: a TAP device opened with a virtio-net header and offloads, so TCP crosses as 64 KB segments.
//
// Deployment: a TAP only sees what the kernel sends into it. For the director to own an interface
// through a TAP, a bridge holds that interface and the TAP (STP off, forward_delay 0), and the director
// uses a MAC that is no bridge port's own address (else the bridge keeps frames for that MAC to itself).
// Either the deployment builds that (persistent TAP, then open the TAP by name) or the port does it when
// given the owned interface's name. macvtap (src/io/macvtap.ts) needs no bridge and measured faster
// (DESIGN.md §3); TAP stays for hosts without macvtap and for labs where a namespace's only link is a TAP.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { basename } from 'node:path';
import { IoError, nativeCall } from './errors.ts';
import { native } from './native.ts';
import { VNET_HDR_LEN, type Port, type PortKind, type PortStats } from './port.ts';

/** TUN_F_* offload bits (include/uapi/linux/if_tun.h). */
export const TUN_F = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, TSO_ECN: 0x08, USO4: 0x20, USO6: 0x40 } as const;
/** CSUM|TSO4|TSO6|TSO_ECN: what the data plane handles (partial checksums, TCP GSO). */
export const DEFAULT_OFFLOADS = TUN_F.CSUM | TUN_F.TSO4 | TUN_F.TSO6 | TUN_F.TSO_ECN;
/** Largest frame with offloads: header + Ethernet with one VLAN tag + the largest IPv4 packet. */
export const GSO_MAX_FRAME = VNET_HDR_LEN + 18 + 65535;

/** The addon functions of native/src/tap.cc. */
export interface TapNative {
  tapOpen(name: string, offloads?: number): number;
  macvtapOpen(name: string, offloads?: number): number;
  tapRxBurst(fd: number, buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max: number, slot: number, stats: Float64Array): number;
  tapTxBurst(fd: number, buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number, slot: number, stats: Float64Array): number;
  tapClose(fd: number): void;
  tapIfInfo(name: string): { ifindex: number; mac: Uint8Array; mtu: number; up: boolean; running: boolean };
  tapIfSetUp(name: string, up: boolean): void;
  tapBridgeAddIf(bridge: string, name: string): void;
  TAP_STAT_COUNT: number;
}

/** Slots of the counter array the addon bumps (tap.cc enum Stat). */
const S = { RX_FRAMES: 0, RX_BYTES: 1, TX_FRAMES: 2, TX_BYTES: 3, RX_DROPPED: 4, TX_ERRORS: 5, TX_AGAIN: 6, COUNT: 7 } as const;

/** The TAP-family addon, typed. */
export function tapNative(): TapNative {
  return native<TapNative>();
}

/** Offloads option → TUN_F bits: true (default) = CSUM|TSO4|TSO6|TSO_ECN, false = none, or raw bits. */
export function offloadBits(o: boolean | number | undefined): number {
  if (o === undefined || o === true) return DEFAULT_OFFLOADS;
  if (o === false) return 0;
  if (!Number.isInteger(o) || o < 0 || o > 0xff) throw new IoError('EINVAL', `bad offload bits ${o}`);
  if (o & (TUN_F.TSO4 | TUN_F.TSO6 | TUN_F.TSO_ECN | TUN_F.USO4 | TUN_F.USO6) && !(o & TUN_F.CSUM)) {
    throw new IoError('EINVAL', 'segmentation offloads need TUN_F_CSUM');
  }
  return o;
}

/** Largest frame the port can deliver with these offloads on an interface of this MTU. */
export function maxFrameFor(offloads: number, mtu: number): number {
  return offloads & (TUN_F.TSO4 | TUN_F.TSO6 | TUN_F.USO4 | TUN_F.USO6) ? GSO_MAX_FRAME : VNET_HDR_LEN + 18 + mtu;
}

/** Reads one counter from the current namespace's sysfs (0 when unreadable). */
export function sysfsCounter(ifname: string, counter: string): number {
  try {
    return Number(readFileSync(`/sys/class/net/${ifname}/statistics/${counter}`, 'utf8').trim()) || 0;
  } catch {
    return 0;
  }
}

/**
 * What TAP and macvtap ports share: one fd with a 10-byte vnet header per frame, one read()/write() per
 * frame in the addon, counters in a Float64Array the addon bumps (no allocation per burst).
 */
export abstract class VnetFdPort implements Port {
  abstract readonly kind: PortKind;
  readonly maxFrame: number;
  /** Bumped by the addon; txAgain (EAGAIN writes, macvtap buffer full) is extra, for diagnosis. */
  protected readonly counters = new Float64Array(S.COUNT);
  private closed = false;
  private readonly dropBase: number;

  protected constructor(
    readonly ifname: string,
    /** The interface whose fd this is (the TAP itself, or the macvtap on top of `ifname`). */
    readonly devName: string,
    readonly fd: number,
    readonly mac: Uint8Array,
    readonly mtu: number,
    readonly offloads: number,
    /** sysfs counter of `devName` that counts frames the kernel dropped for want of a reader. */
    private readonly dropCounter: string,
  ) {
    this.maxFrame = maxFrameFor(offloads, mtu);
    this.dropBase = sysfsCounter(devName, dropCounter);
  }

  rxBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, max: number): number {
    if (this.closed) return 0;
    return tapNative().tapRxBurst(this.fd, buf, offsets, lengths, max, this.maxFrame, this.counters);
  }

  txBurst(buf: Uint8Array, offsets: Uint32Array, lengths: Uint32Array, count: number): number {
    if (this.closed) return 0;
    return tapNative().tapTxBurst(this.fd, buf, offsets, lengths, count, 0, this.counters);
  }

  wait(timeoutMs: number): boolean {
    if (this.closed) return false;
    return native().pollFd(this.fd, timeoutMs);
  }

  stats(): PortStats & { txAgain: number } {
    const c = this.counters;
    return {
      rxFrames: c[S.RX_FRAMES]!,
      rxBytes: c[S.RX_BYTES]!,
      txFrames: c[S.TX_FRAMES]!,
      txBytes: c[S.TX_BYTES]!,
      rxDropped: c[S.RX_DROPPED]! + Math.max(0, sysfsCounter(this.devName, this.dropCounter) - this.dropBase),
      txErrors: c[S.TX_ERRORS]!,
      txAgain: c[S.TX_AGAIN]!,
    };
  }

  /**
   * Nothing to join: a TAP gets every frame its bridge floods to it (link-local groups always, other
   * unregistered groups by default) and the owned interface is a bridge port, so promiscuous; a
   * passthru macvtap puts its lower device in promiscuous mode and hands it every frame, multicast too.
   */
  mcAdd(_mac: Uint8Array): void {}

  mcDel(_mac: Uint8Array): void {}

  close(): void {
    if (this.closed) return;
    this.closed = true;
    tapNative().tapClose(this.fd);
    this.afterClose();
  }

  protected afterClose(): void {}
}

/** Options of a TAP port. */
export interface TapOptions {
  /** Offloads to announce: true (default) = CSUM|TSO4|TSO6|TSO_ECN, false = none (wire-sized frames, complete checksums), or TUN_F bits. */
  offloads?: boolean | number;
  /** Bring the TAP up after opening (default true). */
  up?: boolean;
  /** Make the TAP a port of this existing bridge (SIOCBRADDIF) after opening. */
  bridge?: string;
  /**
   * The MAC the port reports as its own (the director's). Default: the TAP's kernel-side MAC with the
   * locally-administered bit set and the last byte flipped, so it is never a bridge port's own address.
   */
  mac?: Uint8Array;
}

function ipCmd(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr ?? '').trim();
    throw new IoError(/not permitted/i.test(stderr) ? 'EPERM' : 'ESETUP', `ip ${args.join(' ')}: ${stderr || (e as Error).message}`);
  }
}

/** Turns IPv6 off on a device the port made, so the namespace's kernel says nothing on the owned link. */
function quietIpv6(dev: string): void {
  try {
    writeFileSync(`/proc/sys/net/ipv6/conf/${dev}/disable_ipv6`, '1');
  } catch {
    // IPv6 disabled or absent altogether: nothing to silence.
  }
}

/**
 * A TAP port. `ifname` may name:
 * - a TAP (persistent, from `ip tuntap add NAME mode tap`): attached to; its header size and offloads are
 *   set again on every open because they outlive the previous owner;
 * - nothing yet: a TAP of that name is created and lives as long as the port;
 * - another interface the director owns (a NIC, a veth): the port builds the bridged deployment itself —
 *   bridge `tbr<ifindex>` (STP off, forward delay 0, IPv6 off) holding `ifname` and a TAP `tap<ifindex>`
 *   — and removes both on close. `ifname` must not be a bridge port already.
 */
export class TapPort extends VnetFdPort {
  readonly kind = 'tap' as const;

  static open(ifname: string, opts: TapOptions = {}): TapPort {
    const offloads = offloadBits(opts.offloads);
    if (ifname.length === 0 || ifname.length > 15 || ifname.includes('/')) throw new IoError('EINVAL', `bad interface name '${ifname}'`);
    const n = tapNative();
    const exists = existsSync(`/sys/class/net/${ifname}`);
    if (!exists || existsSync(`/sys/class/net/${ifname}/tun_flags`)) return TapPort.openTap(ifname, ifname, offloads, opts, undefined);
    // An ordinary interface: bridge it with a TAP of our own.
    const lower = nativeCall(() => n.tapIfInfo(ifname));
    if (!lower.up) throw new IoError('ENETDOWN', `interface ${ifname} is down`);
    const br = `tbr${lower.ifindex}`;
    const tap = `tap${lower.ifindex}`;
    if (existsSync(`/sys/class/net/${ifname}/master`)) {
      const master = basename(readlinkSync(`/sys/class/net/${ifname}/master`));
      if (master !== br) throw new IoError('ESETUP', `${ifname} is already enslaved to another device (${master})`);
      // Our own bridge: its TAP lives only as long as the fd of the tsvsd that made it, so a bridge
      // holding ifname alone is what a killed tsvsd left behind. Remove it and build afresh.
      const ports = readdirSync(`/sys/class/net/${br}/brif`);
      if (ports.some((p) => p !== ifname)) {
        throw new IoError('ESETUP', `${ifname} is in use: bridge ${br} holds ${ports.filter((p) => p !== ifname).join(', ')} (another tsvsd?)`);
      }
      ipCmd(['link', 'del', br]);
    }
    ipCmd(['link', 'add', br, 'type', 'bridge', 'stp_state', '0', 'forward_delay', '0']);
    try {
      quietIpv6(br);
      ipCmd(['link', 'set', ifname, 'master', br]);
      ipCmd(['link', 'set', br, 'up']);
      return TapPort.openTap(ifname, tap, offloads, { ...opts, bridge: br, up: true }, br);
    } catch (e) {
      try {
        ipCmd(['link', 'del', br]);
      } catch {
        // nothing left to undo
      }
      throw e;
    }
  }

  private static openTap(ifname: string, tap: string, offloads: number, opts: TapOptions, ownBridge: string | undefined): TapPort {
    const n = tapNative();
    const fd = nativeCall(() => n.tapOpen(tap, offloads));
    try {
      if (ownBridge) quietIpv6(tap);
      if (opts.bridge) nativeCall(() => n.tapBridgeAddIf(opts.bridge!, tap));
      if (opts.up !== false) nativeCall(() => n.tapIfSetUp(tap, true));
      const info = nativeCall(() => n.tapIfInfo(tap));
      let mac: Uint8Array;
      if (opts.mac) {
        if (opts.mac.length !== 6) throw new IoError('EINVAL', 'mac must be 6 bytes');
        mac = Uint8Array.from(opts.mac);
      } else {
        mac = Uint8Array.from(info.mac);
        mac[0] = (mac[0]! | 0x02) & 0xfe;
        mac[5] = mac[5]! ^ 0xff;
      }
      // The owned interface's MTU bounds the frames; the TAP's own is the same unless set otherwise.
      const mtu = ownBridge ? nativeCall(() => n.tapIfInfo(ifname)).mtu : info.mtu;
      return new TapPort(ifname, tap, fd, mac, mtu, offloads, ownBridge);
    } catch (e) {
      n.tapClose(fd);
      throw e;
    }
  }

  private constructor(
    ifname: string,
    /** The TAP device whose fd this port holds (= ifname unless the port built a bridge). */
    readonly tap: string,
    fd: number,
    mac: Uint8Array,
    mtu: number,
    offloads: number,
    /** The bridge this port created around `ifname` and deletes on close, if any. */
    readonly bridge: string | undefined,
  ) {
    // Frames toward the fd that found its queue full count as the TAP's tx_dropped.
    super(ifname, tap, fd, mac, mtu, offloads, 'tx_dropped');
  }

  protected override afterClose(): void {
    if (!this.bridge) return;
    try {
      ipCmd(['link', 'del', this.bridge]);
    } catch {
      // gone with the namespace already
    }
  }
}
