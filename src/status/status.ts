/**
 * GET /status. With the admin credential: per command, its URL paths, live children, warm spares,
 * sessions, the era its server speaks (`modern`, `legacy`, or `unknown` until a child of it
 * was probed), spawns, restarts, failures, circuit state and last exit codes; uptime,
 * limits and the policy. With a client credential: a summary that names no command,
 * role or limit (clients need not learn what else the gateway runs).
 */
import type { RequestHandler } from 'express';
import { ADMIN_HINT } from '../auth/admin.js';
import type { CapacitySetup } from '../capacity/setup.js';
import { commandMemory } from '../capacity/status.js';
import type { CommandRegistry } from '../commands/registry.js';
import type { PolicyStats } from '../policy/stats.js';
import type { PolicyStore } from '../policy/store.js';
import type { ProcessManager } from '../process/manager.js';
import type { SessionLimits } from '../transports/sessionFactory.js';
import type { SessionStore } from '../transports/sessions.js';
import { endpointPaths } from '../whitelist/urls.js';

export interface StatusDeps {
  readonly registry: CommandRegistry;
  readonly sessions: SessionStore;
  readonly processes: ProcessManager;
  readonly sessionLimits: SessionLimits;
  readonly reaping: { readonly idleTimeoutMs: number; readonly maxSessionMs: number };
  readonly startedAt: number;
  readonly isDraining: () => boolean;
  readonly policy: PolicyStore | undefined;
  readonly policyStats: PolicyStats;
  /** Memory: the budget, what is in use, per command what a child tree costs. */
  readonly capacity?: CapacitySetup;
}

export function buildStatus(deps: StatusDeps) {
  const commands: Record<string, unknown> = {};
  for (const key of deps.registry.keys()) {
    const spec = deps.registry.get(key)!;
    commands[key] = {
      paths: endpointPaths(key),
      description: spec.description,
      sessions: deps.sessions.countByCommand(key),
      era: deps.processes.eras.era(spec) ?? 'unknown',
      ...deps.processes.status(spec),
      toolsLastListed: deps.policyStats.forCommand(key),
      ...(deps.capacity ? commandMemory(deps.capacity, deps.sessions, spec) : {}),
    };
  }
  const policy = deps.policy?.current;
  return {
    status: deps.isDraining() ? 'draining' : 'ok',
    uptimeSeconds: Math.round((Date.now() - deps.startedAt) / 1000),
    sessions: deps.sessions.size,
    children: deps.processes.total(),
    ...(deps.capacity ? { memory: deps.capacity.capacity.status() } : {}),
    limits: { ...deps.processes.limits, ...deps.sessionLimits, ...deps.reaping },
    policy: policy ? { name: policy.name, version: policy.version, mode: policy.mode, roles: policy.roleNames } : null,
    commands,
  };
}

/** What any authenticated client may see. */
export function statusSummary(deps: Pick<StatusDeps, 'isDraining'>) {
  return { status: deps.isDraining() ? 'draining' : 'ok', details: ADMIN_HINT };
}

export function statusRoute(deps: StatusDeps): RequestHandler {
  return (req, res) => {
    res.json(req.access === 'admin' ? buildStatus(deps) : statusSummary(deps));
  };
}
