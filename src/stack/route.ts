// Longest-prefix-match IPv4 routing: connected prefixes from the director's addresses plus static routes.

/** A route's result: where to send and through which port. gateway 0 means on-link (the destination itself). */
export interface Route {
  prefix: number;
  len: number;
  gateway: number;
  port: number;
}

/**
 * Routes bucketed by prefix length; a lookup tries the lengths present, longest first, with one Map
 * probe each (integer keys, no allocation). Tables are small and rebuilt on the slow path.
 */
export class RouteTable {
  private readonly byLen = new Map<number, Map<number, Route>>();
  private lens: number[] = [];

  /** Adds or replaces the route for prefix/len. */
  add(prefix: number, len: number, gateway: number, port: number): void {
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    const key = (prefix & mask) >>> 0;
    let m = this.byLen.get(len);
    if (!m) {
      m = new Map();
      this.byLen.set(len, m);
      this.lens = [...this.byLen.keys()].sort((a, b) => b - a);
    }
    m.set(key, { prefix: key, len, gateway: gateway >>> 0, port });
  }

  /** Removes the route for prefix/len; true when there was one. */
  remove(prefix: number, len: number): boolean {
    const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
    const m = this.byLen.get(len);
    if (!m || !m.delete((prefix & mask) >>> 0)) return false;
    if (m.size === 0) {
      this.byLen.delete(len);
      this.lens = [...this.byLen.keys()].sort((a, b) => b - a);
    }
    return true;
  }

  /** The most specific route for `dst`, or undefined. */
  lookup(dst: number): Route | undefined {
    const lens = this.lens;
    for (let i = 0; i < lens.length; i++) {
      const len = lens[i]!;
      const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
      const r = this.byLen.get(len)!.get((dst & mask) >>> 0);
      if (r !== undefined) return r;
    }
    return undefined;
  }

  /** Every route, most specific first (for listings). */
  list(): Route[] {
    const out: Route[] = [];
    for (const len of this.lens) out.push(...this.byLen.get(len)!.values());
    return out;
  }
}
