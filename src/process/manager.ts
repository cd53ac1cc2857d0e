/**
 * Hands out children: one fresh process per lease, tracked until it exits, all stopped
 * together at shutdown. The child's env is built here from scratch.
 */
import { buildChildEnv, defaultChildEnvBase, type ChildEnvBase } from '../commands/env.js';
import type { CommandSpec } from '../commands/types.js';
import { WardenError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { ChildTransport, type ChildTransportOptions } from './childTransport.js';
import { spawnChild } from './spawn.js';

export interface ProcessManagerOptions {
  readonly logger: Logger;
  readonly child?: ChildTransportOptions;
  /** PATH, HOME and LANG every child starts from. @default defaultChildEnvBase() */
  readonly envBase?: ChildEnvBase;
}

export class ProcessManager {
  private readonly live = new Set<ChildTransport>();
  private readonly envBase: ChildEnvBase;
  private draining = false;

  constructor(private readonly options: ProcessManagerOptions) {
    this.envBase = options.envBase ?? defaultChildEnvBase();
  }

  get liveCount(): number {
    return this.live.size;
  }

  /** Starts a child for one session, with the session's accepted env vars. */
  async lease(spec: CommandSpec, accepted: Readonly<Record<string, string>>): Promise<ChildTransport> {
    if (this.draining) throw new WardenError('draining', 'gateway is shutting down', { retryAfter: 1 });
    const env = buildChildEnv(spec, { ...accepted }, this.envBase);
    const spawned = await spawnChild(spec, env, this.options.logger);
    const child = new ChildTransport(spawned, spec, this.options.logger, this.options.child);
    this.live.add(child);
    void child.exited.then(() => this.live.delete(child));
    return child;
  }

  /** Refuses new leases and stops every child tree in parallel. */
  async closeAll(): Promise<void> {
    this.draining = true;
    await Promise.allSettled([...this.live].map((child) => child.close()));
  }
}
