/**
 * What both transports do to open a session: check the per-client session limit and the
 * request's ENV_* headers, lease a child with them, and tie a client transport and that
 * child together through a bridge that unregisters the session when either side ends.
 */
import type { Request } from 'express';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { AuditRecorder } from '../audit/recorder.js';
import type { Principal } from '../auth/bearer.js';
import { Bridge } from '../bridge/bridge.js';
import { extractEnvHeaders, validateEnvHeaders } from '../commands/env.js';
import type { EnvMode } from '../commands/envPolicy.js';
import type { CommandSpec } from '../commands/types.js';
import { LimitReachedError, WardenError } from '../errors.js';
import { clientKey } from '../http/clientAddress.js';
import type { Logger } from '../logging/logger.js';
import type { ChildPort } from '../bridge/childPort.js';
import { PolicyGuard, type GuardDeps } from '../policy/guard.js';
import type { ProcessManager } from '../process/manager.js';
import { Session, type SessionStore, type TransportKind } from './sessions.js';

export interface SessionLimits {
  /** Concurrent sessions per client: per principal (all holders of the shared secret are one). @default 16 */
  readonly maxSessionsPerClient: number;
  /** Bytes a client may fall behind on its streams before the session is dropped. @default 16 MiB */
  readonly maxClientBacklogBytes: number;
  /** Bytes queued to a child's stdin past which new requests get 503. @default 4 MiB */
  readonly maxChildQueueBytes: number;
  /** How long a child may take to answer `initialize`, ms. @default 30000 */
  readonly initializeTimeoutMs: number;
  /** ENV_* names an entry without `allowedEnv` accepts (docs/env.md). @default 'blocklist' */
  readonly envMode?: EnvMode;
}

export interface SessionFactoryDeps {
  readonly logger: Logger;
  readonly sessions: SessionStore;
  readonly processes: ProcessManager;
  readonly limits: SessionLimits;
  readonly audit: AuditRecorder;
  /** Policy, rate limits and redaction applied on every session's stream. */
  readonly guard: GuardDeps;
  /** Observes request durations by method. */
  readonly requestSeconds?: { observe(labels: { method: string }, seconds: number): void };
}

/** A child leased for a request, with whom it is counted against. */
export interface Lease {
  readonly child: ChildPort;
  readonly clientKey: string;
}

export class SessionFactory {
  /** Sessions being opened right now, per client (not yet in the store). */
  private readonly opening = new Map<string, number>();

  constructor(private readonly deps: SessionFactoryDeps) {}

  get limits(): SessionLimits {
    return this.deps.limits;
  }

  /** Checks limits and env headers (429/400), then starts a child (502/503 on failure). */
  async leaseChild(req: Request, spec: CommandSpec): Promise<Lease> {
    const key = clientKey(req.principal!);
    const max = this.deps.limits.maxSessionsPerClient;
    const opening = this.opening.get(key) ?? 0;
    if (this.deps.sessions.countByClient(key) + opening >= max) {
      throw new LimitReachedError('maxSessionsPerClient', max, 5, 'rate_limited');
    }
    const accepted = validateEnvHeaders(extractEnvHeaders(req.headersDistinct), spec, { mode: this.deps.limits.envMode });
    this.opening.set(key, opening + 1);
    try {
      return { child: await this.deps.processes.lease(spec, accepted), clientKey: key };
    } finally {
      const left = (this.opening.get(key) ?? 1) - 1;
      if (left > 0) this.opening.set(key, left);
      else this.opening.delete(key);
    }
  }

  /**
   * Ties `client` and `child` together. The caller starts the bridge, then registers the
   * session once the client transport has an id; closing either side unregisters it.
   */
  connect(client: Transport, lease: Lease, spec: CommandSpec, kind: TransportKind, principal: Principal): SessionLink {
    const { logger, sessions, audit } = this.deps;
    const { child } = lease;
    const guard = new PolicyGuard(this.deps.guard, {
      principal,
      commandKey: spec.key,
      clientKey: lease.clientKey,
      sessionTag: () => link.session?.idHash,
    });
    const link: SessionLink = {
      session: undefined,
      bridge: new Bridge(client, child, {
        logger,
        tags: { command: spec.key, transport: kind },
        onActivity: () => link.session?.touch(),
        maxClientBacklogBytes: this.deps.limits.maxClientBacklogBytes,
        guard,
        requestSeconds: this.deps.requestSeconds,
        initializeTimeoutMs: this.deps.limits.initializeTimeoutMs,
      }),
      register(id: string): Session {
        const session = new Session(id, kind, spec.key, principal, lease.clientKey, link.bridge);
        link.session = session;
        sessions.add(session);
        const fields = { session: session.idHash, command: spec.key, transport: kind, pid: child.pid, clientId: principal.clientId, role: principal.role };
        logger.info('session opened', fields);
        audit.record('session_open', fields);
        return session;
      },
    };
    link.bridge.onclosing = () => {
      if (link.session) sessions.delete(link.session);
    };
    link.bridge.onclose = () => {
      const session = link.session;
      if (!session) return;
      logger.info('session closed', { session: session.idHash, command: spec.key, transport: kind });
      audit.record('session_close', { session: session.idHash, command: spec.key, transport: kind, clientId: principal.clientId, durationMs: Date.now() - session.createdAt });
    };
    return link;
  }

  /** 503 when the session's child is not reading its stdin (its queue is over the bound). */
  assertChildAccepting(session: Session): void {
    const queued = session.bridge.child.writableLength;
    if (queued > this.deps.limits.maxChildQueueBytes) {
      throw new WardenError('backpressure', 'the MCP server is not reading its input; try again later', {
        retryAfter: 1,
        data: { queuedBytes: queued },
      });
    }
  }
}

/** A bridge and, once registered, the session that owns it. */
export interface SessionLink {
  session: Session | undefined;
  readonly bridge: Bridge;
  register(id: string): Session;
}
