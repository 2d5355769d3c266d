// The port factory: opens a port of a given kind on an interface, so callers never name a class.
//
// Contract for port authors (tap, macvtap, xdp): add one `case` below that returns your Port, and your
// kind to OPENABLE_KINDS (bench/io.ts and the demo iterate over it); read
// your options from `opts` (add fields to OpenOptions, all optional); throw IoError (errors.ts) when
// opening fails. `openPort` and `OpenOptions` are used by the forwarder (l2fwd.ts, src/cli/l2fwd.ts),
// the e2e harness (src/lab/l2fwd-lab.ts) and bench/io.ts: keep their shapes stable.
import { AfPacketPort } from './afpacket.ts';
import { IoError } from './errors.ts';
import { MacvtapPort } from './macvtap.ts';
import { TapPort } from './tap.ts';
import { XdpPort } from './xdp.ts';
import { MemoryPort } from './memory.ts';
import type { Port, PortKind } from './port.ts';

/** Options any port kind may take; each kind ignores what does not apply to it. */
export interface OpenOptions {
  /** Promiscuous mode on the owned interface (AF_PACKET; macvtap/TAP ports see every frame anyway). */
  promisc?: boolean;
  /** RX ring slots (AF_PACKET). */
  ringFrames?: number;
  /** Bytes per RX ring slot (AF_PACKET). */
  frameSize?: number;
  /** PACKET_FANOUT group to join (AF_PACKET). */
  fanout?: number;
  /** Socket send buffer bytes (AF_PACKET SO_SNDBUF, TAP/macvtap TUNSETSNDBUF). */
  sndbuf?: number;
  /** TX ring instead of sendmmsg for small frames (AF_PACKET). */
  txRing?: boolean;
  /** Drop frames for the kernel's own stack after the port has seen them (AF_PACKET; see AfPacketOptions). */
  kernelDrop?: boolean;
}

/** Opens a port of `kind` on `ifname`. Throws IoError; EINVAL for a kind this build cannot open. */
export function openPort(kind: PortKind, ifname: string, opts: OpenOptions = {}): Port {
  switch (kind) {
    case 'afpacket':
      return new AfPacketPort(ifname, opts);
    case 'tap':
      return TapPort.open(ifname);
    case 'macvtap':
      return MacvtapPort.open(ifname);
    case 'xdp':
      return new XdpPort(ifname);
    case 'memory':
      return new MemoryPort(ifname);
    default:
      throw new IoError('EINVAL', `port kind '${kind}' is not available in this build`);
  }
}

/** Kinds openPort can open on a real interface in this build (memory excluded), best first. */
export const OPENABLE_KINDS: readonly PortKind[] = ['afpacket', 'xdp', 'macvtap', 'tap'];
