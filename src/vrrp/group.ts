// A VRRP sync group (keepalived's vrrp_sync_group): its instances move together, so a VIP and its NAT DIP are never split between directors.
import { State, type GroupHooks, type VrrpInstance } from './instance.ts';

/** Reports the group's own transitions (for notify scripts of the group and the log). */
export type GroupTransition = (group: VrrpSyncGroup, from: State, to: State, reason: string) => void;

/**
 * keepalived's rules: a member goes MASTER only when every other member wants MASTER too (backup is
 * preferred, to avoid thrashing), then all go; one member seeing a better master takes all to
 * BACKUP; one member's fault takes all to FAULT, and the group leaves FAULT when no member has one.
 */
export class VrrpSyncGroup implements GroupHooks {
  state: State = State.INIT;
  readonly members: VrrpInstance[] = [];
  private busy = false;

  constructor(
    readonly name: string,
    private readonly onTransition: GroupTransition,
  ) {}

  add(inst: VrrpInstance): void {
    this.members.push(inst);
    inst.group = this;
  }

  canGotoMaster(inst: VrrpInstance): boolean {
    if (this.state === State.MASTER) return true;
    return this.members.every((m) => m === inst || m.wantState === State.MASTER);
  }

  syncMaster(inst: VrrpInstance, now: number, reason: string): void {
    if (this.busy || this.state === State.MASTER) return this.setState(State.MASTER, reason);
    this.busy = true;
    try {
      for (const m of this.members) {
        if (m === inst || m.state === State.MASTER || m.state === State.STOP) continue;
        if (m.faults.size) continue;
        m.wantState = State.MASTER;
        m.becomeMaster(now, reason);
      }
    } finally {
      this.busy = false;
    }
    this.setState(State.MASTER, reason);
  }

  syncBackup(inst: VrrpInstance, now: number, reason: string): void {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const m of this.members) {
        if (m === inst || m.state === State.BACKUP || m.state === State.STOP) continue;
        m.wantState = State.BACKUP;
        m.syncToBackup(now, reason);
      }
    } finally {
      this.busy = false;
    }
    this.setState(State.BACKUP, reason);
  }

  syncFault(inst: VrrpInstance, now: number, reason: string): void {
    if (this.busy) return;
    this.busy = true;
    try {
      for (const m of this.members) if (m !== inst) m.enterFault(now, reason);
    } finally {
      this.busy = false;
    }
    this.setState(State.FAULT, reason);
  }

  faultCleared(_inst: VrrpInstance, now: number): void {
    if (this.members.some((m) => m.faults.size > 0)) return;
    this.busy = true;
    try {
      for (const m of this.members) m.leaveFault(now, `sync group ${this.name}: no member in fault`);
    } finally {
      this.busy = false;
    }
    this.setState(State.BACKUP, 'no member in fault');
  }

  /** After every member started: one in FAULT holds all in FAULT. */
  started(now: number): void {
    const faulty = this.members.find((m) => m.state === State.FAULT);
    if (faulty) return this.syncFault(faulty, now, `sync group ${this.name}: ${faulty.spec.name} starts in FAULT`);
    this.setState(this.members.every((m) => m.state === State.MASTER) ? State.MASTER : State.BACKUP, 'start');
  }

  private setState(to: State, reason: string): void {
    const from = this.state;
    if (from === to) return;
    this.state = to;
    this.onTransition(this, from, to, reason);
  }
}
