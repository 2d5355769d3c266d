// The sync daemons' UDP sockets on a kernel interface (one tsvsd does not own), held by tsvsd's main thread.

import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { DaemonEntry } from '../../ctl/protocol.ts';

type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/**
 * Slots of the Int32Array both threads share (the worker mailbox): what the main thread's sockets
 * saw, so the data plane's counters tell the truth without a message per event.
 */
export const RELAY = {
  /** sync-rx messages posted to the data plane and not yet processed there. */
  RX_INFLIGHT: 2,
  /** Datagrams dropped because RX_INFLIGHT was at RELAY_RX_MAX (a flood the data plane cannot keep up with). */
  RX_QUEUE_FULL: 3,
  /** Datagrams from a source outside the interface's prefixes (another interface's traffic). */
  RX_OTHER_IF: 4,
  /** Messages the kernel refused to send (counted against master_messages). */
  TX_FAILED: 5,
  /** Int32 slots of the shared buffer. */
  SLOTS: 8,
} as const;

/** Received messages in flight to the data plane at most; more are dropped and counted. */
export const RELAY_RX_MAX = 1024;
/** How often (ms) the interface's address is checked, so the sockets follow it. */
const RECHECK_MS = 5000;
/** A failed send is logged at most this often (ms), with the count since. */
const SEND_WARN_MS = 10_000;

/** The first IPv4 address of a kernel interface (inet_select_addr), undefined when it has none or does not exist. */
export function kernelIfAddress(ifname: string): string | undefined {
  return networkInterfaces()[ifname]?.find((a) => a.family === 'IPv4')?.address;
}

/** Whether the kernel has an interface of that name. */
export function kernelIfExists(ifname: string): boolean {
  return networkInterfaces()[ifname] !== undefined;
}

function u32(a: string): number {
  const p = a.split('.').map(Number);
  return (((p[0]! << 24) | (p[1]! << 16) | (p[2]! << 8) | p[3]!) >>> 0);
}

/** The interface's IPv4 prefixes as [network, mask] pairs. */
function prefixes(ifname: string): Array<[number, number]> {
  return (networkInterfaces()[ifname] ?? []).filter((a) => a.family === 'IPv4').map((a) => {
    const m = u32(a.netmask);
    return [(u32(a.address) & m) >>> 0, m];
  });
}

interface Open {
  state: 'master' | 'backup';
  d: DaemonEntry;
  addr: string;
  sock: dgram.Socket;
  nets: Array<[number, number]>;
}

/**
 * The sockets the kernel's make_send_sock / make_receive_sock would open, pinned to the interface as
 * far as node:dgram allows (it has no SO_BINDTODEVICE): the master binds the interface's IPv4 address
 * and sets IP_MULTICAST_IF to it (TTL, no loopback) and sends to group:port; the backup binds
 * group:port, joins the group on the interface's address, and drops datagrams whose source is not on
 * one of the interface's prefixes (another interface's, counted). An interface without an IPv4
 * address is refused. The address is re-read every 5 s: when it changes (the interface came back,
 * renumbered) the sockets are opened again, membership included.
 */
export class KernelSyncSockets {
  private readonly open_ = new Map<'master' | 'backup', Open>();
  /** Bumped by every open and close of a role: an open that a later close overtook leaves nothing behind. */
  private readonly gen = { master: 0, backup: 0 };
  private timer: ReturnType<typeof setInterval> | null = null;
  private sendFailedSince = 0;
  private lastSendWarn = -Infinity;

  constructor(
    private readonly deliver: (msg: Uint8Array) => void,
    private readonly log: Log,
    /** Shared counters (RELAY slots), or null. */
    private readonly shared: Int32Array | null = null,
  ) {}

  /** Opens the role's socket on the interface's address; rejects (nothing left open) when it cannot. */
  async open(state: 'master' | 'backup', d: DaemonEntry): Promise<void> {
    this.close(state);
    const gen = ++this.gen[state];
    const addr = kernelIfAddress(d.mcastIfn);
    if (addr === undefined) throw new Error(`interface ${d.mcastIfn} has no IPv4 address: give it one`);
    const sock = await this.bind(state, d, addr);
    if (gen !== this.gen[state]) {
      sock.close();
      return;
    }
    this.open_.set(state, { state, d, addr, sock, nets: prefixes(d.mcastIfn) });
    this.timer ??= setInterval(() => this.recheck(), RECHECK_MS);
    this.timer.unref?.();
  }

  private bind(state: 'master' | 'backup', d: DaemonEntry, addr: string): Promise<dgram.Socket> {
    return new Promise((resolve, reject) => {
      const sock = dgram.createSocket({ type: 'udp4', reuseAddr: state === 'backup' });
      const fail = (e: Error) => {
        try {
          sock.close();
        } catch {
          // already closed
        }
        reject(new Error(`sync ${state} socket on ${d.mcastIfn} (${addr}): ${e.message}`));
      };
      sock.once('error', fail);
      const ready = () => {
        try {
          if (state === 'master') {
            sock.setMulticastInterface(addr);
            sock.setMulticastTTL(d.ttl);
            sock.setMulticastLoopback(false);
          } else {
            sock.addMembership(d.group, addr);
          }
        } catch (e) {
          fail(e as Error);
          return;
        }
        sock.off('error', fail);
        sock.on('error', (e) => this.log('error', `sync ${state} socket on ${d.mcastIfn}: ${e.message}`));
        if (state === 'backup') sock.on('message', (msg, rinfo) => this.received(msg, rinfo.address));
        resolve(sock);
      };
      if (state === 'master') sock.bind({ address: addr, port: 0 }, ready);
      else sock.bind({ address: d.group, port: d.port }, ready);
    });
  }

  private received(msg: Buffer, from: string): void {
    const o = this.open_.get('backup');
    if (o === undefined) return;
    const s = u32(from);
    const sh = this.shared;
    if (!o.nets.some(([net, mask]) => ((s & mask) >>> 0) === net)) {
      if (sh) Atomics.add(sh, RELAY.RX_OTHER_IF, 1);
      return;
    }
    if (sh) {
      if (Atomics.load(sh, RELAY.RX_INFLIGHT) >= RELAY_RX_MAX) {
        Atomics.add(sh, RELAY.RX_QUEUE_FULL, 1);
        return;
      }
      Atomics.add(sh, RELAY.RX_INFLIGHT, 1);
    }
    this.deliver(new Uint8Array(msg.buffer, msg.byteOffset, msg.length));
  }

  /** The interface's address changed or came back: open the sockets again on it. */
  private recheck(): void {
    for (const o of [...this.open_.values()]) {
      const addr = kernelIfAddress(o.d.mcastIfn);
      if (addr === undefined || addr === o.addr) {
        o.nets = prefixes(o.d.mcastIfn);
        continue;
      }
      this.log('info', `sync ${o.state} on ${o.d.mcastIfn}: address now ${addr}, socket opened again`);
      this.open(o.state, o.d).catch((e: Error) => this.log('error', e.message));
    }
  }

  close(state: 'master' | 'backup'): void {
    this.gen[state]++;
    const o = this.open_.get(state);
    if (o === undefined) return;
    this.open_.delete(state);
    try {
      o.sock.close();
    } catch {
      // already closed
    }
    if (this.open_.size === 0 && this.timer !== null) {
      clearInterval(this.timer);
      this.timer = null;
    }
  }

  send(msg: Uint8Array): void {
    const m = this.open_.get('master');
    if (m === undefined) {
      this.sendFailed(m, 'no socket');
      return;
    }
    m.sock.send(msg, m.d.port, m.d.group, (e) => {
      if (e) this.sendFailed(m, e.message);
    });
  }

  private sendFailed(m: Open | undefined, why: string): void {
    if (this.shared) Atomics.add(this.shared, RELAY.TX_FAILED, 1);
    this.sendFailedSince++;
    const now = Date.now();
    if (now - this.lastSendWarn < SEND_WARN_MS) return;
    this.log('warn', `sync master send on ${m?.d.mcastIfn ?? '?'}: ${why} (${this.sendFailedSince} failed since the last warning)`);
    this.lastSendWarn = now;
    this.sendFailedSince = 0;
  }

  closeAll(): void {
    this.close('master');
    this.close('backup');
  }
}
