// tsvsadm's entry: parse as ipvsadm does, ask tsvsd over the control socket, print what ipvsadm would print.
import { readFileSync } from 'node:fs';
import { basename } from 'node:path';
import { ControlClient, NoDaemonError } from '../../ctl/client.ts';
import { EXIT_KERNEL_ERROR, EXIT_LIST_ERROR, EXIT_USAGE, IpvsError, ipvsMessage } from '../../ctl/errors.ts';
import { errorOpFor, socketPath, type ListResult, type Op, type RequestBody, type ResultMap } from '../../ctl/protocol.ts';
import { parseArgs, toRequest, type Format, type Parsed } from './args.ts';
import { formatConnections, formatDaemons, formatList, formatOneService, formatTimeouts, listAddresses, sortForListing } from './format.ts';
import { restoreLines } from './restore.ts';
import { formatSave } from './save.ts';
import { formatLaddrs } from './laddr.ts';
import { systemNames, systemResolver, type Names, type Resolver } from './resolve.ts';
import { ROOT } from '../../root.ts';

/** What tsvsadm talks to: tsvsd's control socket in production, anything with `request` in tests. */
export interface Director {
  request<O extends Op>(body: Extract<RequestBody, { op: O }>): Promise<ResultMap[O]>;
  close(): void;
}

export interface RunIo {
  stdout(s: string): void;
  stderr(s: string): void;
  readStdin(): Promise<string>;
  env: NodeJS.ProcessEnv;
}

export interface RunOptions {
  /** argv[0] as ipvsadm would see it (used in "Try `X -h'..." and the usage text). */
  program?: string;
  resolver?: Resolver;
  /** Reverse names for listings without -n. */
  names?: (addrs: string[]) => Promise<Names>;
  /** Opens the director connection (default: ControlClient on the socket path). */
  connect?: (path: string) => Director;
}

let cachedVersion: string | null = null;
/** tsvs's version from package.json. */
export function tsvsVersion(): string {
  if (cachedVersion) return cachedVersion;
  try {
    const pkg = JSON.parse(readFileSync(`${ROOT}package.json`, 'utf8')) as { name?: string; version?: string };
    if (pkg.name === 'tsvs' && pkg.version) return (cachedVersion = pkg.version);
  } catch {
    // unreadable: fall through
  }
  return (cachedVersion = '0.0.0');
}

/** Ends the whole run (ipvsadm's exit(), which also ends a restore). */
class Stop {
  constructor(readonly code: number) {}
}

interface Ctx {
  io: RunIo;
  program: string;
  resolver: Resolver;
  names: (addrs: string[]) => Promise<Names>;
  director: () => Director;
  json: boolean;
}

/** Run tsvsadm with `argv` (without node and script); resolves to the exit status. */
export async function run(argv: readonly string[], io: RunIo, opts: RunOptions = {}): Promise<number> {
  const program = opts.program ?? 'tsvsadm';
  // tsvs's own options may appear anywhere before "--"; they are not part of ipvsadm's grammar.
  const args: string[] = [];
  let sock: string | undefined;
  let json = false;
  let tsvsCmd: '--reload' | '--health' | null = null;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') {
      args.push(...argv.slice(i));
      break;
    }
    if (a === '--json') json = true;
    else if (a === '--reload' || a === '--health') tsvsCmd = a;
    else if (a.startsWith('--socket=')) sock = a.slice('--socket='.length);
    else if (a === '--socket') {
      if (i + 1 >= argv.length) {
        io.stderr('--socket: missing argument\n');
        return EXIT_KERNEL_ERROR;
      }
      sock = argv[++i]!;
    } else args.push(a);
  }
  const path = socketPath(sock, io.env);
  let director: Director | null = null;
  const ctx: Ctx = {
    io,
    program,
    resolver: opts.resolver ?? systemResolver,
    names: opts.names ?? systemNames,
    director: () => (director ??= opts.connect ? opts.connect(path) : new ControlClient(path)),
    json,
  };
  try {
    if (tsvsCmd) {
      if (args.length) {
        io.stderr(`${program}: ${tsvsCmd} takes no other option\n`);
        return EXIT_USAGE;
      }
      return await tsvsCommand(tsvsCmd, ctx);
    }
    // ipvsadm with no arguments lists the table (with names, as -L).
    return await runParsedLine(args.length === 0 ? ['-L'] : args, ctx, false);
  } catch (e) {
    if (e instanceof Stop) return e.code;
    throw e;
  } finally {
    (director as Director | null)?.close();
  }
}

async function runParsedLine(args: readonly string[], ctx: Ctx, restoring: boolean): Promise<number> {
  const out = await parseArgs(args, {
    program: ctx.program,
    resolver: ctx.resolver,
    tsvsVersion: tsvsVersion(),
    restoring,
    json: ctx.json && !restoring,
  });
  if (out.kind === 'exit') {
    if (out.stdout) ctx.io.stdout(out.stdout);
    if (out.stderr) ctx.io.stderr(out.stderr);
    throw new Stop(out.code);
  }
  if (out.kind === 'error') {
    ctx.io.stderr(out.stderr);
    return out.code;
  }
  return execute(out.parsed, ctx);
}

/** tsvs's own commands beyond ipvsadm: --reload (re-read tsvsd's config) and --health (checker states). */
async function tsvsCommand(cmd: '--reload' | '--health', ctx: Ctx): Promise<number> {
  const io = ctx.io;
  try {
    if (cmd === '--reload') {
      const r = await ask(ctx, { op: 'reload' });
      if (ctx.json) io.stdout(JSON.stringify(r, null, 2) + '\n');
      else {
        const s = r.summary;
        io.stdout(
          `reloaded: services +${s.servicesAdded ?? 0} -${s.servicesRemoved ?? 0} ~${s.servicesChanged ?? 0}, ` +
            `real servers +${s.serversAdded ?? 0} -${s.serversRemoved ?? 0} ~${s.serversChanged ?? 0}, addresses ${s.addresses ?? 0}\n`,
        );
        if (r.restartNeeded.length) io.stdout(`needs a restart to take effect: ${r.restartNeeded.join(', ')}\n`);
        for (const e of r.errors) io.stderr(`refused: ${e}\n`);
      }
      return r.errors.length ? EXIT_KERNEL_ERROR : 0;
    }
    const h = (await ask(ctx, { op: 'health' })) as HealthView;
    if (ctx.json) {
      io.stdout(JSON.stringify(h, null, 2) + '\n');
      return 0;
    }
    io.stdout('Prot LocalAddress:Port -> RemoteAddress:Port   State  Weight  Checks  Failures  Latency  Last\n');
    for (const pool of h.pools ?? []) {
      const svc = pool.service;
      const name = typeof svc === 'string' ? svc : `${String(svc.type ?? '').toUpperCase()}  ${svc.addr}:${svc.port}`;
      io.stdout(`${name}${pool.quorumUp === false ? '  (quorum lost)' : ''}${pool.sorryActive ? '  (sorry server active)' : ''}\n`);
      for (const r of pool.servers ?? []) {
        const lat = r.lastLatencyMs === undefined || r.lastLatencyMs === null ? '-' : `${Number(r.lastLatencyMs).toFixed(1)}ms`;
        io.stdout(`  -> ${`${r.addr}:${r.port}`.padEnd(24)} ${String(r.state).padEnd(6)} ${String(r.weight ?? '').padStart(6)}  ${String(r.checks ?? 0).padStart(6)}  ${String(r.failures ?? 0).padStart(8)}  ${lat.padStart(7)}  ${r.lastDetail ?? ''}\n`);
      }
    }
    return 0;
  } catch (e) {
    if (e instanceof IpvsError) {
      io.stderr(`${e.message}\n`);
      return EXIT_KERNEL_ERROR;
    }
    throw e;
  }
}

interface HealthView {
  pools?: Array<{
    service: string | { type?: string; addr?: string; port?: number };
    quorumUp?: boolean;
    sorryActive?: boolean;
    servers?: Array<{ addr: string; port: number; state: string; weight?: number; checks?: number; failures?: number; lastLatencyMs?: number | null; lastDetail?: string }>;
  }>;
}

/** Send a request; a missing director ends the run with one line naming the socket. */
async function ask<O extends Op>(ctx: Ctx, body: Extract<RequestBody, { op: O }>): Promise<ResultMap[O]> {
  try {
    return await ctx.director().request(body);
  } catch (e) {
    if (e instanceof NoDaemonError) {
      ctx.io.stderr(`${ctx.program}: ${e.message}\n`);
      throw new Stop(EXIT_USAGE);
    }
    throw e;
  }
}

function errText(e: IpvsError, op: Op): string {
  // Local-address ops are DPVS's: their texts come from the director.
  if (op.startsWith('laddr-')) return e.message;
  return ipvsMessage(errorOpFor(op), e.code) ?? e.message;
}

async function namesFor(ctx: Ctx, f: Format, addrs: string[]): Promise<Names | null> {
  return f.numeric ? null : ctx.names(addrs);
}

function sortedList(list: ListResult, f: Format): ListResult {
  return { ...list, services: sortForListing(list.services, f.nosort) };
}

async function execute(p: Parsed, ctx: Ctx): Promise<number> {
  const io = ctx.io;
  const json = (v: unknown) => io.stdout(JSON.stringify(v, null, 2) + '\n');
  if (p.cmd === 'restore') return restore(ctx);
  const req = toRequest(p)!;
  if (p.cmd === 'list' || p.cmd === 'save' || p.cmd === 'get-laddr') {
    try {
      if (req.op === 'laddr-list') {
        const r = await ask(ctx, req);
        if (p.json) json(r);
        else io.stdout(formatLaddrs(r));
      } else if (req.op === 'connections') {
        const r = await ask(ctx, req);
        if (p.json) json(r);
        else {
          const names = await namesFor(ctx, p.format, r.conns.flatMap((c) => [c.caddr, c.vaddr, c.daddr]));
          io.stdout(formatConnections(r.conns, p.format, names));
        }
      } else if (req.op === 'get-timeout') {
        const r = await ask(ctx, req);
        if (p.json) json(r);
        else io.stdout(formatTimeouts(r));
      } else if (req.op === 'get-daemon') {
        const r = await ask(ctx, req);
        if (p.json) json(r);
        else io.stdout(formatDaemons(r.daemons));
      } else if (req.op === 'list') {
        const r = await ask(ctx, req);
        if (p.json) json(sortedList(r, p.format));
        else {
          const names = await namesFor(ctx, p.format, listAddresses(r.services));
          if (p.cmd === 'save') io.stdout(formatSave(r, names, false, await ask(ctx, { op: 'laddr-list' })));
          else if (req.service) {
            const svc = r.services[0];
            if (!svc) {
              io.stderr(ipvsMessage('list', 'ESRCH') + '\n');
              throw new Stop(EXIT_LIST_ERROR);
            }
            io.stdout(formatOneService(svc, p.format, names));
          } else io.stdout(formatList(r, p.format, names));
        }
      }
      return 0;
    } catch (e) {
      if (e instanceof IpvsError) {
        // ipvsadm exits at once on listing errors; the timeout and daemon queries fail silently.
        if (req.op !== 'get-timeout' && req.op !== 'get-daemon') io.stderr(errText(e, req.op) + '\n');
        throw new Stop(EXIT_LIST_ERROR);
      }
      throw e;
    }
  }
  try {
    await ask(ctx, req as Extract<RequestBody, { op: Op }>);
    return 0;
  } catch (e) {
    if (e instanceof IpvsError) {
      io.stderr(errText(e, req.op) + '\n');
      return EXIT_KERNEL_ERROR;
    }
    throw e;
  }
}

/** -R: each stdin line runs as its own command; parse errors abort, director errors continue; the last line's status wins. */
async function restore(ctx: Ctx): Promise<number> {
  const text = await ctx.io.readStdin();
  let result = 0;
  for (const line of restoreLines(text)) result = await runParsedLine(line, ctx, true);
  return result;
}

/** Process entry used by bin/tsvsadm.mjs. */
export async function main(): Promise<void> {
  const io: RunIo = {
    stdout: (s) => process.stdout.write(s),
    stderr: (s) => process.stderr.write(s),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const c of process.stdin) chunks.push(c as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
    env: process.env,
  };
  const script = process.argv[1] ? basename(process.argv[1]).replace(/\.m?[jt]s$/, '') : 'tsvsadm';
  const code = await run(process.argv.slice(2), io, { program: script === 'main' ? 'tsvsadm' : script });
  process.exitCode = code;
}
