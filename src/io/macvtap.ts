// macvtap port: the director owns an interface through a passthru macvtap on it, vnet header and offloads on.
//
// passthru gives the macvtap the lower interface's MAC and puts the lower interface in promiscuous mode,
// so every frame reaching it goes to the fd, whatever its destination MAC; no bridge is needed. A lower
// interface that is already a bridge port refuses a macvtap (EBUSY: one rx_handler per device).
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { IoError, nativeCall } from './errors.ts';
import { offloadBits, tapNative, VnetFdPort } from './tap.ts';

/** Options of a macvtap port. */
export interface MacvtapOptions {
  /** Offloads to announce: true (default) = CSUM|TSO4|TSO6|TSO_ECN, false = none, or TUN_F bits. */
  offloads?: boolean | number;
  /** Name for a macvtap this port creates (default `mvt<ifindex of the lower interface>`). */
  name?: string;
}

/** The macvtap already stacked on `lower`, found through sysfs upper_* links, if any. */
function findMacvtapOn(lower: string): string | undefined {
  let entries: string[];
  try {
    entries = readdirSync(`/sys/class/net/${lower}`);
  } catch {
    return undefined;
  }
  for (const e of entries) {
    if (!e.startsWith('upper_')) continue;
    const up = e.slice('upper_'.length);
    if (existsSync(`/sys/class/net/${up}/macvtap`)) return up;
  }
  return undefined;
}

function ip(args: string[]): void {
  try {
    execFileSync('ip', args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 10_000 });
  } catch (e) {
    const stderr = String((e as { stderr?: Buffer }).stderr ?? '').trim();
    const code = /not permitted/i.test(stderr) ? 'EPERM' : /cannot find device/i.test(stderr) ? 'ENODEV' : 'ESETUP';
    throw new IoError(code, `ip ${args.join(' ')}: ${stderr || (e as Error).message}`);
  }
}

/**
 * A port on interface `ifname` through a macvtap in passthru mode. `ifname` may also name a macvtap
 * itself. When no macvtap sits on `ifname`, one is created (`ip link add link IF name mvtN type macvtap
 * mode passthru`), brought up, and deleted again on close; an existing one is reused and left in place.
 * Needs the namespace's own sysfs (run under `ip netns exec`), root, and the lower interface up.
 */
export class MacvtapPort extends VnetFdPort {
  readonly kind = 'macvtap' as const;

  static open(ifname: string, opts: MacvtapOptions = {}): MacvtapPort {
    const offloads = offloadBits(opts.offloads);
    const n = tapNative();
    const lowerInfo = nativeCall(() => n.tapIfInfo(ifname));
    let mv: string;
    let created = false;
    if (existsSync(`/sys/class/net/${ifname}/macvtap`)) {
      mv = ifname;
    } else {
      if (!lowerInfo.up) throw new IoError('ENETDOWN', `interface ${ifname} is down`);
      const found = findMacvtapOn(ifname);
      if (found) {
        mv = found;
      } else {
        mv = opts.name ?? `mvt${lowerInfo.ifindex}`;
        if (mv.length > 15) throw new IoError('EINVAL', `macvtap name too long: ${mv}`);
        ip(['link', 'add', 'link', ifname, 'name', mv, 'type', 'macvtap', 'mode', 'passthru']);
        created = true;
      }
    }
    try {
      nativeCall(() => n.tapIfSetUp(mv, true));
      const fd = nativeCall(() => n.macvtapOpen(mv, offloads));
      const info = nativeCall(() => n.tapIfInfo(mv));
      return new MacvtapPort(ifname, mv, fd, Uint8Array.from(info.mac), info.mtu, offloads, created);
    } catch (e) {
      if (created) {
        try {
          ip(['link', 'del', mv]);
        } catch {
          // already gone with its lower interface
        }
      }
      throw e;
    }
  }

  private constructor(
    ifname: string,
    /** The macvtap interface whose char device this port holds. */
    readonly macvtap: string,
    fd: number,
    mac: Uint8Array,
    mtu: number,
    offloads: number,
    /** True when this port created the macvtap (and deletes it on close). */
    readonly created: boolean,
  ) {
    // Frames the macvtap could not queue toward the fd count as its rx_dropped.
    super(ifname, macvtap, fd, mac, mtu, offloads, 'rx_dropped');
  }

  protected override afterClose(): void {
    if (!this.created) return;
    try {
      ip(['link', 'del', this.macvtap]);
    } catch {
      // The lower interface (or the namespace) went first and took the macvtap with it.
    }
  }
}
