/**
 * The memory figures of one command for /status (admin details): its child trees now, the
 * mean and high-water mark of one tree, what a new child of it is planned at, its limit,
 * and how many of its sessions sleep.
 */
import type { CommandSpec } from '../commands/types.js';
import { HibernatingPort } from '../process/hibernate.js';
import type { SessionStore } from '../transports/sessions.js';
import { MiB } from './budget.js';
import type { CapacitySetup } from './setup.js';

const mb = (bytes: number): number => Math.round((bytes / MiB) * 10) / 10;

/** Open sessions of `key` whose child is stopped until their next message. */
export function hibernatedSessions(sessions: SessionStore, key: string): number {
  let n = 0;
  for (const s of sessions.all()) if (s.commandKey === key && s.bridge.child instanceof HibernatingPort && s.bridge.child.hibernated) n += 1;
  return n;
}

export function commandMemory(capacity: CapacitySetup, sessions: SessionStore, spec: CommandSpec) {
  const figures = capacity.sampler.command(spec.key);
  const limit = capacity.sampler.limitOf({ spec }).bytes;
  return {
    hibernated: hibernatedSessions(sessions, spec.key),
    memory: {
      trees: figures.trees,
      liveMb: mb(figures.liveBytes),
      meanMb: mb(figures.meanBytes),
      highWaterMb: mb(figures.highWaterBytes),
      expectedMb: mb(capacity.capacity.expectedCost(spec)),
      limitMb: limit > 0 ? mb(limit) : null,
      samples: figures.samples,
    },
  };
}
