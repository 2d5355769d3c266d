// VRRP transitions in tsvsd's main thread: logged with their reason, keepalived's notify scripts run, tracked services' quorum handed to the data plane.
import { spawn } from 'node:child_process';
import type { VrrpConfig } from './config.ts';
import type { VrrpEvent } from './host.ts';

export type VrrpLog = (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
/** Runs one command line with extra arguments; resolves when it ends. */
export type ScriptRunner = (cmd: string, args: string[]) => Promise<void>;

interface Scripts {
  notify_master?: string | undefined;
  notify_backup?: string | undefined;
  notify_fault?: string | undefined;
  notify_stop?: string | undefined;
  notify?: string | undefined;
}

const SCRIPT_TIMEOUT_MS = 30_000;

/**
 * Splits a configured command into words, for an exec without a shell (keepalived execs its scripts
 * so too): blanks separate words, '...' and "..." group them, a backslash escapes the next character
 * (outside single quotes). Shell syntax (; | > $) is plain text here.
 */
export function splitCommand(cmd: string): string[] {
  const words: string[] = [];
  let w = '';
  let inWord = false;
  let q: "'" | '"' | null = null;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i]!;
    if (q === "'") {
      if (c === "'") q = null;
      else w += c;
    } else if (c === '\\' && i + 1 < cmd.length && (q === null || cmd[i + 1] === '"' || cmd[i + 1] === '\\')) {
      w += cmd[++i]!;
      inWord = true;
    } else if (q === '"') {
      if (c === '"') q = null;
      else w += c;
    } else if (c === "'" || c === '"') {
      q = c;
      inWord = true;
    } else if (c === ' ' || c === '\t') {
      if (inWord) words.push(w);
      w = '';
      inWord = false;
    } else {
      w += c;
      inWord = true;
    }
  }
  if (inWord) words.push(w);
  return words;
}

/**
 * Runs `cmd` as keepalived does: split into words and exec'd directly, never through a shell, with
 * `args` appended (so "script.sh arg" in the config and keepalived's INSTANCE NAME STATE PRIO both
 * work, and nothing in a command or an argument is ever interpreted). The script gets its own
 * process group, killed whole after 30 s; a failure to start, a non-zero exit or a kill is logged.
 */
export function defaultScriptRunner(log: VrrpLog): ScriptRunner {
  return (cmd, args) =>
    new Promise((resolve) => {
      const words = splitCommand(cmd);
      if (!words.length) {
        log('warn', `notify command failed: "${cmd}" is empty`, { command: cmd });
        resolve();
        return;
      }
      const child = spawn(words[0]!, [...words.slice(1), ...args], { stdio: 'ignore', detached: true });
      const t = setTimeout(() => {
        try {
          if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL');
        } catch {
          // Already gone.
        }
      }, SCRIPT_TIMEOUT_MS);
      child.once('error', (e) => {
        clearTimeout(t);
        log('warn', `notify command failed: ${cmd}: ${e.message}`, { command: cmd });
        resolve();
      });
      child.once('exit', (code, signal) => {
        clearTimeout(t);
        if (code !== 0) log('warn', `notify command failed: ${cmd}: ${signal ? `killed by ${signal}` : `exit ${code}`}`, { command: cmd });
        resolve();
      });
    });
}

/** Turns data-plane VRRP events into log lines and keepalived's notify_* calls. */
export class VrrpNotifier {
  private readonly instances = new Map<string, Scripts>();
  private readonly groups = new Map<string, Scripts>();
  private readonly grouped = new Set<string>();
  private readonly run: ScriptRunner;
  /** Scripts still running (so a clean stop can wait for notify_stop). */
  private readonly pending = new Set<Promise<void>>();

  constructor(
    cfg: VrrpConfig,
    private readonly log: VrrpLog,
    run?: ScriptRunner,
  ) {
    for (const i of cfg.instances) this.instances.set(i.name, i);
    for (const g of cfg.sync_groups) {
      this.groups.set(g.name, g);
      for (const n of g.instances) this.grouped.add(n);
    }
    this.run = run ?? defaultScriptRunner(log);
  }

  handle(e: VrrpEvent): void {
    const what = e.kind === 'group' ? `VRRP sync group ${e.name}` : `VRRP instance ${e.name}`;
    const level = e.to === 'FAULT' ? 'warn' : 'info';
    this.log(level, `${what}: ${e.from} -> ${e.to}: ${e.reason}`, { vrrp: e.name, kind: e.kind, from: e.from, to: e.to, priority: e.priority, reason: e.reason });
    if (e.to === 'INIT') return;
    const scripts = e.kind === 'group' ? this.groups.get(e.name) : this.instances.get(e.name);
    if (!scripts) return;
    const specific = { MASTER: scripts.notify_master, BACKUP: scripts.notify_backup, FAULT: scripts.notify_fault, STOP: scripts.notify_stop }[e.to];
    if (specific) this.track(this.run(specific, []));
    if (scripts.notify) this.track(this.run(scripts.notify, [e.kind === 'group' ? 'GROUP' : 'INSTANCE', e.name, e.to, String(e.priority)]));
  }

  /** Resolves when every started script has ended. */
  async drain(): Promise<void> {
    await Promise.all([...this.pending]);
  }

  private track(p: Promise<void>): void {
    this.pending.add(p);
    void p.finally(() => this.pending.delete(p));
  }
}

/** Services the instances track ("tcp 198.18.1.100:80"), each once. */
export function trackedServices(cfg: VrrpConfig): string[] {
  return [...new Set(cfg.instances.flatMap((i) => i.track_services.map((t) => t.service.toLowerCase())))];
}

/** The health monitor's pool name of a tracked service ("TCP 198.18.1.100:80"). */
export function poolName(service: string): string {
  const [proto, rest] = service.split(' ');
  return `${proto!.toUpperCase()} ${rest}`;
}
