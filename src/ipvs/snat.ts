// SNAT for connections real servers open themselves (DPVS's SNAT mode): outbound source → a director address and port, replies mapped back.
import { CONN_F } from './conn.ts';
import { DIR_INPUT } from './proto/proto.ts';
import type { Lip } from './laddr.ts';
import type { Ipvs } from './service.ts';
import { Fwd } from './types.ts';

/** One rule: sources in prefix/len leave from `lip`'s address, each conn with a port of its pool. */
export interface SnatRule {
  prefix: number;
  mask: number;
  len: number;
  lip: Lip;
}

/**
 * The director's SNAT table. A conn is keyed like any other: client side (RS addr:port → remote
 * addr:port, what the real server sends), real-server side (remote → SNAT addr:port, the reply), so
 * the conn table, its timers and TCP states serve it unchanged; laddr/lport hold the SNAT address and
 * port. The rules are few and scanned in order, only for packets no other conn claimed.
 */
export class Snat {
  rules: SnatRule[] = [];
  /** New outbound conns refused: the SNAT address had no free port. */
  exhausted = 0;
  /** Outbound conns created. */
  created = 0;

  constructor(private readonly ipvs: Ipvs) {}

  /** The rule for source `saddr`, or null. */
  match(saddr: number): SnatRule | null {
    const r = this.rules;
    for (let i = 0; i < r.length; i++) {
      const x = r[i]!;
      if (((saddr & x.mask) >>> 0) === x.prefix) return x;
    }
    return null;
  }

  /**
   * An outbound packet from a real server (FORWARD): its conn, created for a conn-opening packet,
   * with the state moved and the timer re-armed. Returns the conn, -1 when the packet cannot open
   * one, -2 when the SNAT address is out of ports.
   */
  outbound(rule: SnatRule, proto: number, saddr: number, sport: number, daddr: number, dport: number, tcpFlags: number): number {
    const ipvs = this.ipvs;
    const pp = ipvs.protocol(proto);
    if (pp === undefined) return -1;
    const ct = ipvs.conns;
    let c = ct.lookupIn(proto, saddr, sport, daddr, dport);
    if (c >= 0 && (ct.flags[c]! & CONN_F.FWD_MASK) !== Fwd.Snat) return -1;
    if (c < 0) {
      if (!pp.mayCreate(tcpFlags, ipvs.sysctl.sloppyTcp !== 0)) return -1;
      const port = rule.lip.take();
      if (port < 0) {
        this.exhausted++;
        return -2;
      }
      c = ct.alloc(proto, saddr, sport, daddr, dport, daddr, dport, Fwd.Snat | CONN_F.INACTIVE, -1);
      if (c < 0) {
        rule.lip.give(port);
        return -1;
      }
      ct.laddr[c] = rule.lip.addr;
      ct.lport[c] = port;
      ct.hash(c, true);
      this.created++;
    }
    pp.transition(ct, c, DIR_INPUT, tcpFlags, undefined);
    ct.arm(c);
    return c;
  }
}
