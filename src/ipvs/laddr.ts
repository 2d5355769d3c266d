// FullNAT local addresses (LIPs): the director's own addresses FullNAT conns leave from, each with a FIFO of free local ports.

/**
 * Local ports a LIP hands out. DPVS's sa_pool skips the well-known range too: a real server's reply
 * to LIP:lport must never look like traffic to a service the director itself might run.
 */
export const LPORT_MIN = 1025;
export const LPORT_MAX = 65535;
const NPORTS = LPORT_MAX - LPORT_MIN + 1;

/**
 * One local address with its port pool. Ports are unique per LIP whatever the real server, so the
 * real-server-side tuple (RIP:rport → LIP:lport) of every conn is unique. The pool is a ring of free
 * ports (take from the head, give back at the tail, as DPVS's sa_pool moves entries between its free
 * and used lists): a port just released is reused last, which keeps a late segment of an old conn
 * from matching a new one. A bitmap of ports in use makes a double release harmless. Memory is fixed
 * at creation (about 136 KB per LIP); taking and giving allocate nothing.
 */
export class Lip {
  readonly addr: number;
  /** The director port the address lives on. */
  readonly port: number;
  /** The interface name given with -F ('' when the route chose it). */
  readonly ifname: string;
  private readonly ring = new Uint16Array(NPORTS);
  private readonly used = new Uint32Array(65536 >>> 5);
  private head = 0;
  private free = NPORTS;
  /** Live conns holding a port of this LIP. */
  conns = 0;
  /** Times a port was wanted and none was free (DPVS's port_conflict). */
  conflicts = 0;
  /** Services whose pool lists this LIP. */
  refs = 0;

  constructor(addr: number, port: number, ifname: string) {
    this.addr = addr >>> 0;
    this.port = port;
    this.ifname = ifname;
    for (let i = 0; i < NPORTS; i++) this.ring[i] = LPORT_MIN + i;
  }

  /** Free ports left. */
  get available(): number {
    return this.free;
  }

  /** A free port, or -1 (counted as a conflict) when all are in use. */
  take(): number {
    if (this.free === 0) {
      this.conflicts++;
      return -1;
    }
    const p = this.ring[this.head]!;
    this.head = this.head + 1 === NPORTS ? 0 : this.head + 1;
    this.free--;
    this.used[p >>> 5] = (this.used[p >>> 5]! | (1 << (p & 31))) >>> 0;
    this.conns++;
    return p;
  }

  /** Gives port `p` back; a port not in use is ignored. */
  give(p: number): void {
    const w = p >>> 5;
    const bit = 1 << (p & 31);
    if (p < LPORT_MIN || p > LPORT_MAX || (this.used[w]! & bit) === 0) return;
    this.used[w] = (this.used[w]! & ~bit) >>> 0;
    let tail = this.head + this.free;
    if (tail >= NPORTS) tail -= NPORTS;
    this.ring[tail] = p;
    this.free++;
    this.conns--;
  }

  /** Whether port `p` is held by a conn. */
  inUse(p: number): boolean {
    return (this.used[p >>> 5]! & (1 << (p & 31))) !== 0;
  }
}

/** A service's LIP pool: the LIPs in the order they were added, and the round-robin cursor. */
export class SvcLaddrs {
  lips: Lip[] = [];
  private cur = -1;

  /**
   * Picks the next LIP round robin with a free port and takes the port (dp_vs_laddr_bind tries each
   * LIP once). Returns the LIP with `lastPort` set, or null when the pool is empty or every LIP is out
   * of ports.
   */
  bind(): Lip | null {
    const n = this.lips.length;
    for (let k = 0; k < n; k++) {
      this.cur = this.cur + 1 >= n ? 0 : this.cur + 1;
      const lip = this.lips[this.cur]!;
      const p = lip.take();
      if (p >= 0) {
        this.lastPort = p;
        return lip;
      }
    }
    return null;
  }

  /** The port the last successful `bind` took. */
  lastPort = 0;
}

/**
 * Every LIP of the director by address. A LIP lives while a service lists it or a conn holds one of
 * its ports, so a conn outliving `--del-laddr` still gives its port back to the right pool.
 */
export class LaddrTable {
  private readonly byAddr = new Map<number, Lip>();
  /** New FullNAT conns refused because no LIP of the service had a free port. */
  exhausted = 0;
  /** Called when a LIP is forgotten (the director then stops owning the address). */
  onForget: (l: Lip) => void = () => {};

  get size(): number {
    return this.byAddr.size;
  }

  has(addr: number): boolean {
    return this.byAddr.has(addr);
  }

  get(addr: number): Lip | undefined {
    return this.byAddr.get(addr >>> 0);
  }

  /** The LIP for `addr`, created on `port` when new. */
  obtain(addr: number, port: number, ifname: string): Lip {
    let l = this.byAddr.get(addr >>> 0);
    if (l === undefined) {
      l = new Lip(addr, port, ifname);
      this.byAddr.set(l.addr, l);
    }
    return l;
  }

  /** Gives a conn's port back; forgets the LIP once nothing uses it. Returns whether it was forgotten. */
  release(addr: number, port: number): boolean {
    const l = this.byAddr.get(addr);
    if (l === undefined) return false;
    l.give(port);
    return this.forgetIfUnused(l);
  }

  /** Forgets `l` when no service lists it and no conn holds its ports. */
  forgetIfUnused(l: Lip): boolean {
    if (l.refs > 0 || l.conns > 0) return false;
    this.byAddr.delete(l.addr);
    this.onForget(l);
    return true;
  }
}
