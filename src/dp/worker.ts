// The data-plane worker thread: opens the ports, runs the burst loop, applies control requests between bursts.
import { workerData, parentPort, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { openPort } from '../io/open.ts';
import { AfPacketPort } from '../io/afpacket.ts';
import { native } from '../io/native.ts';
import { toIoError } from '../io/errors.ts';
import type { Port, PortKind } from '../io/port.ts';
import type { Config } from '../ctl/config.ts';
import type { Request } from '../ctl/protocol.ts';
import { Dataplane } from './dataplane.ts';
import { TraceSessions } from './trace.ts';
import type { VrrpEvent } from '../vrrp/host.ts';
import { errorResponse, okResponse, type DaemonEntry } from '../ctl/protocol.ts';
import type { SyncRelay } from '../ipvs/sync/daemon.ts';
import { FastPath } from '../fastpath/runtime.ts';

/** What tsvsd hands the worker. */
export interface WorkerInit {
  config: Config;
  /** Int32Array view: [0] pending control messages, [1] stop flag, then the sync relay's RELAY slots. */
  mailbox: SharedArrayBuffer;
  control: MessagePort;
}

/** Messages the worker posts on the control port. */
export type WorkerEvent =
  | { type: 'ready'; ports: Array<{ ifname: string; kind: string; mac: string; mtu: number; kernelRx?: 'drop' | 'pass' }> }
  | { type: 'fatal'; message: string; code?: string }
  | { type: 'reply'; seq: number; response: unknown }
  | { type: 'trace'; seq: number; event: unknown }
  | { type: 'log'; level: 'debug' | 'info' | 'warn' | 'error'; msg: string; fields?: Record<string, unknown> }
  | { type: 'vrrp'; event: VrrpEvent }
  // A sync daemon on a kernel interface: the main thread holds its socket.
  | { type: 'sync-open'; state: 'master' | 'backup'; daemon: DaemonEntry }
  | { type: 'sync-close'; state: 'master' | 'backup' }
  | { type: 'sync-tx'; bytes: Uint8Array }
  | { type: 'stopped' };

/** Messages tsvsd posts to the worker. */
export type WorkerCommand =
  | { type: 'request'; seq: number; request: Request }
  | { type: 'trace-stop'; seq: number }
  /** A virtual service a VRRP instance tracks gained or lost its quorum ("tcp 198.18.1.100:80"). */
  | { type: 'vrrp-track'; service: string; up: boolean }
  /** A sync message the main thread received on a kernel interface. */
  | { type: 'sync-rx'; bytes: Uint8Array }
  /** The main thread opened a kernel-interface sync socket (error null) or could not. */
  | { type: 'sync-opened'; state: 'master' | 'backup'; error: string | null }
  | { type: 'stop' };

const IDLE_POLL_MS = 10;
const TICK_MS = 10;
/**
 * Relayed sync messages processed per loop iteration at most: a multicast flood on a kernel
 * interface waits its turn (and is capped by the main thread) instead of stalling forwarding.
 */
export const SYNC_RX_PER_LOOP = 64;

function main(): void {
  const init = workerData as WorkerInit;
  const ctl = init.control;
  const mailbox = new Int32Array(init.mailbox);
  const post = (e: WorkerEvent) => ctl.postMessage(e);
  const ports: Port[] = [];
  const kind: PortKind = init.config.io ?? 'afpacket';
  try {
    for (const ifname of init.config.interfaces) {
      ports.push(openPort(kind, ifname, { promisc: init.config.promiscuous, kernelDrop: init.config.kernel_rx === 'drop' }));
    }
  } catch (e) {
    for (const p of ports) p.close();
    const err = toIoError(e);
    post({ type: 'fatal', message: err.message, code: err.code });
    return;
  }
  let dp: Dataplane;
  try {
    const relay: SyncRelay = {
      open: (state, daemon) => post({ type: 'sync-open', state, daemon }),
      close: (state) => post({ type: 'sync-close', state }),
      send: (msg) => {
        post({ type: 'sync-tx', bytes: msg.slice() });
        return true;
      },
      shared: mailbox,
    };
    // A VIP a VRRP instance releases leaves the fast path at the next tick (FastPath.tick sees Director.addrGen move).
    dp = new Dataplane(ports, init.config, (level, msg, fields) => post({ type: 'log', level, msg, fields }), relay, (event) => post({ type: 'vrrp', event }));
  } catch (e) {
    for (const p of ports) p.close();
    post({ type: 'fatal', message: (e as Error).message });
    return;
  }
  let fast: FastPath | null;
  try {
    fast = FastPath.open(init.config.fastpath, ports, dp, (level, msg, fields) => post({ type: 'log', level, msg, fields }));
  } catch (e) {
    dp.close();
    for (const p of ports) p.close();
    post({ type: 'fatal', message: (e as Error).message });
    return;
  }
  for (const p of ports) {
    if (p instanceof AfPacketPort && p.kernelDropError) {
      post({ type: 'log', level: 'warn', msg: `the kernel still processes frames arriving on ${p.ifname} (${p.kernelDropError}); keep kernel forwarding off there`, fields: { ifname: p.ifname } });
    }
  }
  post({
    type: 'ready',
    ports: ports.map((p) => ({
      ifname: p.ifname,
      kind: p.kind,
      mac: [...p.mac].map((b) => b.toString(16).padStart(2, '0')).join(':'),
      mtu: p.mtu,
      ...(p instanceof AfPacketPort ? { kernelRx: p.kernelDrop ? 'drop' : 'pass' } : {}),
    })),
  });

  dp.start(performance.now());
  const traces = new TraceSessions(dp.director.tracer, ports.map((p) => p.ifname));
  const fds = new Int32Array(ports.map((p) => p.fd).filter((fd) => fd >= 0));
  const io = fds.length ? native() : null;
  let lastTick = performance.now();
  const busyPoll = init.config.busy_poll;
  let running = true;
  // A start-daemon on a kernel interface is answered once the main thread has its socket open.
  const startReplies = new Map<'master' | 'backup', { seq: number; id: number }>();
  let more = false;
  while (running) {
    if (more || Atomics.load(mailbox, 0) !== 0) {
      Atomics.store(mailbox, 0, 0);
      more = false;
      let syncBudget = SYNC_RX_PER_LOOP;
      for (let m = receiveMessageOnPort(ctl); m !== undefined; m = receiveMessageOnPort(ctl)) {
        const cmd = m.message as WorkerCommand;
        if (cmd.type === 'stop') {
          running = false;
          break;
        }
        if (cmd.type === 'trace-stop') {
          traces.stop(cmd.seq);
          continue;
        }
        if (cmd.type === 'vrrp-track') {
          dp.vrrp?.trackService(cmd.service, cmd.up, performance.now());
          continue;
        }
        if (cmd.type === 'sync-rx') {
          dp.sync.receiveRelayed(cmd.bytes);
          if (--syncBudget === 0) {
            // The rest stays queued for the next iteration, after a burst of packets.
            more = true;
            break;
          }
          continue;
        }
        if (cmd.type === 'sync-opened') {
          const ok = dp.sync.relayOpened(cmd.state, cmd.error);
          const w = startReplies.get(cmd.state);
          startReplies.delete(cmd.state);
          if (w !== undefined) {
            post({ type: 'reply', seq: w.seq, response: ok ? okResponse(w.id, null)
              : errorResponse(w.id, 'start-daemon', 'EINVAL', `start-daemon: ${cmd.error ?? 'the sync socket did not open'}; nothing started`) });
          }
          continue;
        }
        const req = cmd.request;
        if (req.op === 'trace') {
          traces.start(cmd.seq, req, (event) => post({ type: 'trace', seq: cmd.seq, event }), (packets) =>
            post({ type: 'reply', seq: cmd.seq, response: okResponse(req.id, { packets }) }),
          );
          // A traced conn must show every packet: its frames go back to the TS path at once.
          if (dp.director.tracer.active) fast?.cache.removeAll();
          continue;
        }
        // Counters the program kept go into the stats first, so a listing right after traffic is exact.
        fast?.cache.fold();
        const response = dp.handle(req);
        fast?.revalidate();
        if (req.op === 'start-daemon' && response.ok && dp.sync.awaitingRelay(req.daemon.state)) {
          startReplies.set(req.daemon.state, { seq: cmd.seq, id: req.id });
          continue;
        }
        post({ type: 'reply', seq: cmd.seq, response });
      }
      if (!running) break;
    }
    const now = performance.now();
    const n = dp.director.runOnce(now);
    if (now - lastTick >= TICK_MS) {
      dp.tick(now);
      fast?.tick(now);
      lastTick = now;
    }
    // Busy-poll (on request) never sleeps: no wake-up latency per burst, one core spent on it.
    if (n === 0 && io && !busyPoll) io.pollFds(fds, IDLE_POLL_MS);
  }
  fast?.close();
  dp.close(performance.now());
  for (const p of ports) p.close();
  post({ type: 'stopped' });
}

if (parentPort) main();
