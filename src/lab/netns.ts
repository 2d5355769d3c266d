// Network-namespace building blocks for the lab and the e2e tests: unique names, veths, exec, cleanup.
import { spawn, execFile, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { promisify } from 'node:util';

const execFileP = promisify(execFile);

/** Result of a command run to completion. */
export interface ExecResult {
  stdout: string;
  stderr: string;
  code: number;
}

let seq = 0;

/** True when the process can build namespaces (root). */
export function canUseNetns(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0;
}

/** Runs a command to completion; never throws for a non-zero exit (see `code`). */
export async function run(cmd: string, args: string[], timeoutMs = 30_000): Promise<ExecResult> {
  try {
    const { stdout, stderr } = await execFileP(cmd, args, { timeout: timeoutMs, maxBuffer: 64 << 20 });
    return { stdout, stderr, code: 0 };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; code?: number | string; message: string };
    return {
      stdout: err.stdout ?? '',
      stderr: err.stderr ?? err.message,
      code: typeof err.code === 'number' ? err.code : 1,
    };
  }
}

/** Runs a command and throws with its stderr when it fails. */
export async function must(cmd: string, args: string[], timeoutMs = 30_000): Promise<string> {
  const r = await run(cmd, args, timeoutMs);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout;
}

/**
 * A set of namespaces created together and destroyed together. Names are `tsvs-<pid>-<tag><n>-<role>`
 * so parallel runs never collide; `destroy()` kills the processes it started (by PID) and deletes the
 * namespaces (which removes their veths). Safe to call twice.
 */
export class Netns {
  readonly prefix: string;
  private readonly names = new Map<string, string>();
  private readonly procs = new Set<ChildProcess>();
  private destroyed = false;

  private constructor(tag: string) {
    this.prefix = `tsvs-${process.pid}-${tag}${seq++}`;
  }

  /** Starts an empty set; `tag` is a short word (letters/digits) naming the user. */
  static create(tag: string): Netns {
    if (!/^[a-z0-9]{1,8}$/.test(tag)) throw new Error(`namespace tag must be 1-8 lowercase letters/digits: ${tag}`);
    return new Netns(tag);
  }

  /** Full namespace name of a role. */
  ns(role: string): string {
    const n = this.names.get(role);
    if (!n) throw new Error(`no namespace for role ${role}`);
    return n;
  }

  roles(): string[] {
    return [...this.names.keys()];
  }

  /** Creates a namespace for `role` with lo up and IPv6 disabled (the lab is IPv4). */
  async add(role: string): Promise<string> {
    const name = `${this.prefix}-${role}`;
    if (name.length > 60) throw new Error(`namespace name too long: ${name}`);
    await must('ip', ['netns', 'add', name]);
    this.names.set(role, name);
    await this.sh(role, 'ip link set lo up; sysctl -qw net.ipv6.conf.all.disable_ipv6=1 net.ipv6.conf.default.disable_ipv6=1');
    return name;
  }

  /** Creates a veth pair between two roles' namespaces, both ends up. Interface names are ≤ 15 chars. */
  async veth(roleA: string, ifA: string, roleB: string, ifB: string, opts: { mtu?: number } = {}): Promise<void> {
    await must('ip', ['link', 'add', ifA, 'netns', this.ns(roleA), 'type', 'veth', 'peer', 'name', ifB, 'netns', this.ns(roleB)]);
    for (const [role, ifn] of [
      [roleA, ifA],
      [roleB, ifB],
    ] as const) {
      if (opts.mtu) await this.ip(role, 'link', 'set', ifn, 'mtu', String(opts.mtu));
      await this.sh(role, `sysctl -qw net.ipv6.conf.${ifn.replace(/\./g, '/')}.disable_ipv6=1 || true`);
      await this.ip(role, 'link', 'set', ifn, 'up');
    }
  }

  /** `ip ARGS` inside a role's namespace; throws on failure. */
  async ip(role: string, ...args: string[]): Promise<string> {
    return must('ip', ['-n', this.ns(role), ...args]);
  }

  /** Runs a command inside a role's namespace to completion; never throws for a non-zero exit. */
  async exec(role: string, cmd: string[], timeoutMs = 30_000): Promise<ExecResult> {
    return run('ip', ['netns', 'exec', this.ns(role), ...cmd], timeoutMs);
  }

  /** Runs a shell snippet inside a role's namespace; throws when it fails. */
  async sh(role: string, script: string, timeoutMs = 30_000): Promise<string> {
    const r = await this.exec(role, ['sh', '-c', script], timeoutMs);
    if (r.code !== 0) throw new Error(`[${role}] ${script} failed (${r.code}): ${r.stderr.trim()}`);
    return r.stdout;
  }

  /** Starts a long-running process inside a role's namespace; it is killed by `destroy()`. */
  spawn(role: string, cmd: string[], opts: SpawnOptions = {}): ChildProcess {
    const child = spawn('ip', ['netns', 'exec', this.ns(role), ...cmd], { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
    this.procs.add(child);
    child.once('exit', () => this.procs.delete(child));
    return child;
  }

  /** Stops one process started by `spawn` (SIGTERM, then SIGKILL after `graceMs`). */
  async stop(child: ChildProcess, graceMs = 2000): Promise<void> {
    if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(t);
  }

  /** Kills every process this set started, then deletes its namespaces. Idempotent. */
  async destroy(): Promise<void> {
    if (this.destroyed) return;
    this.destroyed = true;
    await Promise.all([...this.procs].map((p) => this.stop(p, 1000)));
    for (const name of [...this.names.values()].reverse()) {
      // Processes that escaped (children of ours that re-parented) would keep the namespace alive only
      // through their own references; deleting the name is what we own.
      await run('ip', ['netns', 'del', name]);
    }
    this.names.clear();
  }
}

/** Builds a namespace set, runs `fn`, and always destroys the set, even when `fn` throws. */
export async function withNetns<T>(tag: string, fn: (n: Netns) => Promise<T>): Promise<T> {
  const n = Netns.create(tag);
  const onSignal = () => {
    void n.destroy().finally(() => process.exit(130));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    return await fn(n);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await n.destroy();
  }
}

/** Waits until `probe` resolves true, polling every `stepMs`, or throws after `timeoutMs`. */
export async function waitFor(what: string, probe: () => Promise<boolean> | boolean, timeoutMs = 10_000, stepMs = 50): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (await probe()) return;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, stepMs));
  }
}
