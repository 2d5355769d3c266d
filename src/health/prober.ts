// Where probes run: in this process, or — for socket checks in another network namespace — in a helper process started with `ip netns exec`.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { runCheck, type CheckResult, type CheckSpec } from './checks.ts';
import { moduleCommand } from '../root.ts';

/** Runs one probe; never throws. */
export type Probe = (spec: CheckSpec) => Promise<CheckResult>;

export interface Prober {
  probe: Probe;
  /** Ends the helper processes (if any). */
  close(): void;
}

/**
 * A namespace can only be entered per thread (setns), and libuv's threads would not follow, so
 * socket checks for a namespace run in one long-lived helper per namespace: `ip netns exec NS node
 * probe-boot.mjs`, speaking JSON lines on stdin/stdout. ping and misc are commands already, so
 * they run through `ip netns exec` directly (checks.ts). Without a namespace everything runs here.
 */
export function createProber(opts: { helperTimeoutMs?: number } = {}): Prober {
  const helpers = new Map<string, Helper>();
  return {
    probe: (spec) => {
      if (!spec.netns || spec.type === 'ping' || spec.type === 'misc') return runCheck(spec);
      let h = helpers.get(spec.netns);
      if (!h || h.dead) {
        h = new Helper(spec.netns, opts.helperTimeoutMs ?? 1000);
        helpers.set(spec.netns, h);
      }
      return h.run(spec);
    },
    close: () => {
      for (const h of helpers.values()) h.close();
      helpers.clear();
    },
  };
}

class Helper {
  dead = false;
  private seq = 0;
  private readonly pending = new Map<number, { resolve: (r: CheckResult) => void; timer: NodeJS.Timeout }>();
  private readonly child: ChildProcess;

  constructor(readonly netns: string, private readonly slackMs: number) {
    this.child = spawn('ip', ['netns', 'exec', netns, ...moduleCommand(import.meta.url, './probe-main')], { stdio: ['pipe', 'pipe', 'pipe'] });
    let err = '';
    this.child.stderr!.on('data', (d: Buffer) => {
      if (err.length < 2000) err += d.toString();
    });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      let msg: { id?: number; result?: CheckResult };
      try {
        msg = JSON.parse(line) as typeof msg;
      } catch {
        return;
      }
      if (msg.id === undefined || !msg.result) return;
      const p = this.pending.get(msg.id);
      if (!p) return;
      this.pending.delete(msg.id);
      clearTimeout(p.timer);
      p.resolve(msg.result);
    });
    const fail = (why: string) => {
      this.dead = true;
      for (const [, p] of this.pending) {
        clearTimeout(p.timer);
        p.resolve({ ok: false, latencyMs: 0, detail: why });
      }
      this.pending.clear();
    };
    this.child.once('error', (e) => fail(`probe helper for namespace ${netns} could not start: ${e.message}`));
    this.child.once('exit', (code) => fail(`probe helper for namespace ${netns} exited (${code})${err ? `: ${err.trim().split('\n').pop()}` : ''}`));
    this.child.stdin!.on('error', () => {});
  }

  run(spec: CheckSpec): Promise<CheckResult> {
    return new Promise((resolve) => {
      const id = ++this.seq;
      // The helper bounds each check itself; this timer only covers a helper that hangs.
      const timer = setTimeout(() => {
        this.pending.delete(id);
        resolve({ ok: false, latencyMs: spec.timeoutMs, detail: `probe helper for namespace ${this.netns} did not answer` });
      }, spec.timeoutMs + this.slackMs + 2000);
      this.pending.set(id, { resolve, timer });
      this.child.stdin!.write(JSON.stringify({ id, spec }) + '\n');
    });
  }

  close(): void {
    this.dead = true;
    this.child.stdin!.end();
    const pid = this.child.pid;
    const t = setTimeout(() => {
      if (pid && this.child.exitCode === null) this.child.kill('SIGKILL');
    }, 1000);
    t.unref();
  }
}
