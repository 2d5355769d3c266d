// The static scheduler registry: every kernel IPVS scheduler, looked up by its ipvsadm name.

import type { Scheduler } from '../types.ts';
import { dh } from './dh.ts';
import { fo } from './fo.ts';
import { lblc } from './lblc.ts';
import { lblcr } from './lblcr.ts';
import { lc } from './lc.ts';
import { mh } from './mh.ts';
import { nq } from './nq.ts';
import { ovf } from './ovf.ts';
import { rr } from './rr.ts';
import { sed } from './sed.ts';
import { sh } from './sh.ts';
import { twos } from './twos.ts';
import { wlc } from './wlc.ts';
import { wrr } from './wrr.ts';

const schedulers = new Map<string, Scheduler>();

/** Adds a scheduler; a second one with the same name throws (a programming error, at startup). */
export function registerScheduler(s: Scheduler): void {
  if (schedulers.has(s.name)) throw new Error(`scheduler "${s.name}" is already registered`);
  schedulers.set(s.name, s);
}

/** The scheduler registered under `name`, or undefined. */
export function getScheduler(name: string): Scheduler | undefined {
  return schedulers.get(name);
}

/** Registered scheduler names, in registration order. */
export function schedulerNames(): string[] {
  return [...schedulers.keys()];
}

/** The scheduler a service gets when none is named (the kernel's IP_VS_SCHEDULER_DEFAULT). */
export const DEFAULT_SCHEDULER = 'wlc';

for (const s of [rr, wrr, lc, wlc, sed, nq, lblc, lblcr, dh, sh, mh, fo, ovf, twos]) registerScheduler(s);
