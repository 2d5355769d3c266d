// E2e set-up for VRRP: one LAN segment (a bridge) with a client, a DR real server, tsvsd directors and optionally a keepalived, each in its own namespace.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { ChildProcess } from 'node:child_process';
import { Netns, waitFor, withNetns } from '../../src/lab/netns.ts';
import { requestOnce } from '../../src/ctl/client.ts';
import type { VrrpInstanceSnapshot } from '../../src/vrrp/host.ts';
import { ROOT } from './director-harness.ts';

export const VIP = '198.18.1.100';
export const RS = '198.18.1.11';
export const CLIENT = '198.18.1.50';

export interface Tsvsd {
  role: string;
  child: ChildProcess;
  socket: string;
  /** Log lines (pino JSON) seen so far. */
  lines: Array<{ msg?: string; time?: number; [k: string]: unknown }>;
}

export interface VrrpLan {
  n: Netns;
  dir: string;
  /**
   * Starts tsvsd in `role` with `instance` as the YAML of its one instance VI_1 (merged over defaults).
   * `check`: the real server gets a TCP health check (probes leave through the role's mgmt0, see `mgmt`).
   */
  tsvsd(role: string, own: string, instance: Record<string, unknown>, opts?: { check?: boolean }): Promise<Tsvsd>;
  /** Starts tsvsd in `role` with a keepalived.conf (`text`) and `--interface lan0 --address OWN/24@lan0`. */
  tsvsdKeepalived(role: string, own: string, text: string): Promise<Tsvsd>;
  /** Gives `role` a kernel interface on the LAN (mgmt0, `addr`/24) for health checks to leave from. */
  mgmt(role: string, addr: string): Promise<void>;
  /** Stops the real server's programs (SIGKILL) or starts them again. */
  realServer(up: boolean): Promise<void>;
  /** The instance's snapshot, or null when tsvsd does not answer. */
  state(t: Tsvsd): Promise<VrrpInstanceSnapshot | null>;
  /** Waits until `t`'s VI_1 is in `state`; resolves with the ms it took. */
  waitState(t: Tsvsd, state: string, timeoutMs: number): Promise<number>;
  /** One HTTP request from the client to the VIP; the real server's answer or null. */
  curl(): Promise<string | null>;
  /** The MAC that answers ARP for the VIP on the LAN (fresh request), or null. */
  vipMac(): Promise<string | null>;
  mac(role: string): Promise<string>;
}

/** The namespaces of the LAN: a switch, the client, the real server, and one per extra role (directors, keepalived). */
export async function withVrrpLan(tag: string, roles: string[], fn: (lan: VrrpLan) => Promise<void>): Promise<void> {
  await withNetns(tag, async (n) => {
    const dir = mkdtempSync(join(tmpdir(), 'tsvs-vrrp-'));
    try {
      await n.add('sw');
      await n.sh('sw', 'ip link add br0 type bridge stp_state 0 forward_delay 0 mcast_snooping 0 && ip link set br0 up');
      for (const role of ['cl', 'rs', ...roles]) {
        await n.add(role);
        await n.veth(role, 'lan0', 'sw', `p-${role}`);
        await n.ip('sw', 'link', 'set', `p-${role}`, 'master', 'br0');
      }
      await n.ip('cl', 'addr', 'add', `${CLIENT}/24`, 'dev', 'lan0');
      await n.ip('rs', 'addr', 'add', `${RS}/24`, 'dev', 'lan0');
      // The classic DR real server: the VIP on lo, no ARP for it.
      await n.sh('rs', `ip addr add ${VIP}/32 dev lo && sysctl -qw net.ipv4.conf.all.arp_ignore=1 net.ipv4.conf.all.arp_announce=2 net.ipv4.conf.lan0.arp_ignore=1 net.ipv4.conf.lan0.arp_announce=2`);
      const startRs = async () => {
        const child = n.spawn('rs', [process.execPath, '--import', 'tsx', `${ROOT}src/lab/rs-main.ts`, '--name', 'rs1', '--http', '80', '--udp', '5353']);
        await new Promise<void>((resolve, reject) => {
          const t = setTimeout(() => reject(new Error('real server did not start')), 20_000);
          createInterface({ input: child.stdout! }).on('line', (l) => {
            if (l.startsWith('ready')) {
              clearTimeout(t);
              resolve();
            }
          });
        });
        return child;
      };
      let rs: ChildProcess | null = await startRs();
      let starts = 0;
      /** Starts tsvsd with `args` in `role`; resolves once its control socket listens. */
      const startTsvsd = async (role: string, args: string[], socket: string): Promise<Tsvsd> => {
        const child = n.spawn(role, [process.execPath, `${ROOT}bin/tsvsd.mjs`, ...args]);
        const t: Tsvsd = { role, child, socket, lines: [] };
        let err = '';
        const ready = new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`tsvsd in ${role} did not start: ${err.slice(-800)}`)), 30_000);
          createInterface({ input: child.stderr! }).on('line', (l) => {
            err += `${l}\n`;
            try {
              const j = JSON.parse(l) as Tsvsd['lines'][number];
              t.lines.push(j);
              if (j.msg === 'control socket listening') {
                clearTimeout(timer);
                resolve();
              }
            } catch {
              /* not JSON */
            }
          });
          child.once('exit', (c) => {
            clearTimeout(timer);
            reject(new Error(`tsvsd in ${role} exited (${c}): ${err.slice(-800)}`));
          });
        });
        await ready;
        return t;
      };
      const lan: VrrpLan = {
        n,
        dir,
        async mgmt(role, addr) {
          await n.veth(role, 'mgmt0', 'sw', `m-${role}`);
          await n.ip('sw', 'link', 'set', `m-${role}`, 'master', 'br0');
          await n.ip(role, 'addr', 'add', `${addr}/24`, 'dev', 'mgmt0');
        },
        async realServer(up) {
          if (!up && rs) {
            const child = rs;
            rs = null;
            await n.stop(child, 100);
          } else if (up && !rs) rs = await startRs();
        },
        async tsvsd(role, own, instance, opts = {}) {
          const socket = join(dir, `${role}-${++starts}.sock`);
          const cfg = join(dir, `${role}-${starts}.yaml`);
          const vi = { name: 'VI_1', interface: 'lan0', vrid: 51, addresses: [`${VIP}/32`], ...instance };
          writeFileSync(
            cfg,
            JSON.stringify({
              interfaces: ['lan0'],
              addresses: [`${own}/24@lan0`],
              services: [
                {
                  protocol: 'tcp',
                  address: VIP,
                  port: 80,
                  scheduler: 'rr',
                  realservers: [{ address: RS, method: 'dr', ...(opts.check ? { check: { type: 'tcp', interval: 0.3, timeout: 0.5, fall: 1, rise: 1 } } : {}) }],
                },
              ],
              vrrp: { instances: [vi] },
            }),
          );
          return startTsvsd(role, ['--config', cfg, '--socket', socket], socket);
        },
        async tsvsdKeepalived(role, own, text) {
          const socket = join(dir, `${role}-${++starts}.sock`);
          const cfg = join(dir, `${role}-${starts}-keepalived.conf`);
          writeFileSync(cfg, text);
          return startTsvsd(role, ['--config', cfg, '--interface', 'lan0', '--address', `${own}/24@lan0`, '--socket', socket], socket);
        },
        async state(t) {
          try {
            const r = await requestOnce(t.socket, { op: 'vrrp' });
            return r.instances[0] ?? null;
          } catch {
            return null;
          }
        },
        async waitState(t, state, timeoutMs) {
          const start = Date.now();
          await waitFor(`${t.role} ${state}`, async () => (await lan.state(t))?.state === state, timeoutMs, 20);
          return Date.now() - start;
        },
        async curl() {
          const r = await n.exec('cl', ['curl', '-s', '--max-time', '2', `http://${VIP}/`], 5000);
          return r.code === 0 ? r.stdout.trim() : null;
        },
        async vipMac() {
          const r = await n.exec('cl', ['arping', '-c', '1', '-w', '2', '-I', 'lan0', VIP], 5000);
          const m = /\[([0-9a-f:]{17})\]/i.exec(r.stdout);
          return m ? m[1]!.toLowerCase() : null;
        },
        async mac(role) {
          const r = await n.exec(role, ['cat', '/sys/class/net/lan0/address']);
          return r.stdout.trim().toLowerCase();
        },
      };
      await fn(lan);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
}

/** The VRRP transitions a tsvsd logged, as "FROM->TO: reason". */
export function transitions(t: Tsvsd): string[] {
  return t.lines.filter((l) => l.kind === 'instance' && typeof l.to === 'string').map((l) => `${l.from}->${l.to}: ${l.reason}`);
}
