// The sync daemons' UDP sockets on a kernel interface (one tsvsd does not own), held by tsvsd's main thread.

import dgram from 'node:dgram';
import { networkInterfaces } from 'node:os';
import type { DaemonEntry } from '../../ctl/protocol.ts';

type Log = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;

/** The first IPv4 address of a kernel interface (inet_select_addr), undefined when it has none or does not exist. */
export function kernelIfAddress(ifname: string): string | undefined {
  return networkInterfaces()[ifname]?.find((a) => a.family === 'IPv4')?.address;
}

/** Whether the kernel has an interface of that name. */
export function kernelIfExists(ifname: string): boolean {
  return networkInterfaces()[ifname] !== undefined;
}

/**
 * The sockets the kernel's make_send_sock / make_receive_sock would open: the master sends from the
 * interface's address (IP_MULTICAST_IF, TTL, no loopback) to group:port; the backup binds group:port
 * and joins the group on the interface. Received message bytes go to `deliver` (the data plane).
 */
export class KernelSyncSockets {
  private master: { sock: dgram.Socket; d: DaemonEntry } | null = null;
  private backup: dgram.Socket | null = null;

  constructor(
    private readonly deliver: (msg: Uint8Array) => void,
    private readonly log: Log,
  ) {}

  open(state: 'master' | 'backup', d: DaemonEntry): void {
    this.close(state);
    const addr = kernelIfAddress(d.mcastIfn);
    if (addr === undefined) this.log('warn', `sync ${state} on ${d.mcastIfn}: the interface has no IPv4 address; you probably need to give it one`);
    const onError = (e: Error) => this.log('error', `sync ${state} socket on ${d.mcastIfn}: ${e.message}`);
    if (state === 'master') {
      const sock = dgram.createSocket({ type: 'udp4' });
      sock.on('error', onError);
      sock.bind({ address: addr ?? '0.0.0.0', port: 0 }, () => {
        try {
          if (addr) sock.setMulticastInterface(addr);
          sock.setMulticastTTL(d.ttl);
          sock.setMulticastLoopback(false);
        } catch (e) {
          onError(e as Error);
        }
      });
      this.master = { sock, d };
    } else {
      const sock = dgram.createSocket({ type: 'udp4', reuseAddr: true });
      sock.on('error', onError);
      sock.on('message', (msg) => this.deliver(new Uint8Array(msg.buffer, msg.byteOffset, msg.length)));
      sock.bind({ address: d.group, port: d.port }, () => {
        try {
          sock.addMembership(d.group, addr);
        } catch (e) {
          onError(e as Error);
        }
      });
      this.backup = sock;
    }
  }

  close(state: 'master' | 'backup'): void {
    if (state === 'master') {
      this.master?.sock.close();
      this.master = null;
    } else {
      this.backup?.close();
      this.backup = null;
    }
  }

  send(msg: Uint8Array): void {
    const m = this.master;
    if (m === null) return;
    m.sock.send(msg, m.d.port, m.d.group, (e) => {
      if (e) this.log('warn', `sync master send on ${m.d.mcastIfn}: ${e.message}`);
    });
  }

  closeAll(): void {
    this.close('master');
    this.close('backup');
  }
}
