/**
 * The Fly.io parts of a gateway, built from its settings: routing between machines (only
 * with a machine id: `FLY_MACHINE_ID`, which Fly sets; without one nothing here exists and
 * session ids stay random UUIDs) and the per-client session counts shared through Redis
 * (whenever the gateway has one, on Fly or not).
 */
import { randomUUID } from 'node:crypto';
import type { Settings } from '../config/settings.js';
import type { Logger } from '../logging/logger.js';
import { deploymentKey } from '../modern/conversations.js';
import type { RequestStateSealer } from '../modern/requestState.js';
import type { LimiterStore } from '../ratelimit/limiter.js';
import { DnsMachines, type MachineSource } from './machines.js';
import { FlyRouter } from './router.js';
import { MachineSessionIds } from './sessionIds.js';
import { RedisSessionSlots, type SessionSlots } from './sessionSlots.js';

export interface FlySetupDeps {
  readonly logger: Logger;
  readonly sealer: RequestStateSealer;
  /** Overrides the machine list (tests); by default Fly's DNS, `vms.<app>.internal`. */
  readonly machines?: MachineSource;
}

/** The router of this machine, or undefined outside Fly.io (no machine id). */
export function flyRouter(settings: Settings, deps: FlySetupDeps): FlyRouter | undefined {
  const self = settings.flyMachineId;
  if (self === undefined || settings.secret === undefined) return undefined;
  const app = settings.flyAppName;
  // Without an app name there is no list to learn: only this machine is known to be live.
  const machines = deps.machines ?? (app ? new DnsMachines({ app, self, logger: deps.logger }) : { current: () => [self] });
  return new FlyRouter({ sessionIds: new MachineSessionIds(self, deploymentKey(settings.secret, 'session id')), machines, sealer: deps.sealer });
}

/** Shared session counts when the limiter store has a Redis; undefined (per machine) otherwise. */
export function sharedSessionSlots(settings: Settings, store: LimiterStore, logger: Logger): SessionSlots | undefined {
  if (!store.redis) return undefined;
  return new RedisSessionSlots({ redis: store.redis, keyPrefix: settings.redisPrefix, instance: settings.flyMachineId ?? randomUUID(), logger });
}
