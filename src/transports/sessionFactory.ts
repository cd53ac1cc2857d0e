/**
 * Opening a session, for both transports: check the per-client session limit and the
 * request's ENV_* headers, lease a child with them, tie the client transport and that child
 * together through a bridge (with the session's policy guard), register the session, and
 * start both sides. Closing either side unregisters it.
 */
import type { AuditRecorder } from '../audit/recorder.js';
import type { Principal } from '../auth/bearer.js';
import { Bridge } from '../bridge/bridge.js';
import type { ChildPort } from '../bridge/childPort.js';
import { requestEnvEntries, validateEnvHeaders } from '../commands/env.js';
import type { EnvMode } from '../commands/envPolicy.js';
import type { CommandSpec } from '../commands/types.js';
import { LimitReachedError, WardenError } from '../errors.js';
import { clientKey } from '../http/clientAddress.js';
import type { Logger } from '../logging/logger.js';
import { PolicyGuard, type GuardDeps } from '../policy/guard.js';
import type { ProcessManager } from '../process/manager.js';
import type { SessionSlots } from '../fly/sessionSlots.js';
import type { RoutedRequest } from './routed.js';
import { Session, type ClientTransportOf, type SessionStore, type TransportKind } from './sessions.js';

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
  /** At maxSessionsPerClient, a session of the client idle this long gives way to its new one, ms. @default 300000 */
  readonly evictIdleMs?: number;
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
  /** Told how long each session took to open, and whether its child was waiting. */
  readonly onConnected?: (kind: TransportKind, pooled: boolean, seconds: number) => void;
  /** With a shared Redis: sessions per client counted across every machine (src/fly/sessionSlots.ts). */
  readonly slots?: SessionSlots;
  /** Closes a client's least recently used session idle for `idleMs` (src/capacity/evictor.ts); absent: never. */
  readonly evictor?: { forClient(clientKey: string, idleMs: number): Promise<boolean> };
}

/** A child leased for a request, with whom it is counted against. */
interface Lease {
  readonly child: ChildPort;
  readonly clientKey: string;
  /** Gives back the client's shared session slot (idempotent). */
  readonly release: () => void;
}

export class SessionFactory {
  /** Sessions being opened right now, per client (not yet in the store). */
  private readonly opening = new Map<string, number>();

  constructor(private readonly deps: SessionFactoryDeps) {}

  get limits(): SessionLimits {
    return this.deps.limits;
  }

  /**
   * Opens a session for `request` with the client transport `create` makes. Undefined when
   * the client left while its child started (the child is then stopped). The order matters:
   * the session is registered before the bridge starts, because starting the client side
   * may announce the session (SSE's endpoint event) and a POST for it can follow at once.
   */
  async open<K extends TransportKind>(
    request: RoutedRequest,
    kind: K,
    create: () => ClientTransportOf[K],
    { detached = false }: { readonly detached?: boolean } = {},
  ): Promise<Session<K> | undefined> {
    const started = performance.now();
    const lease = await this.leaseChild(request);
    // A session lives on its first response unless `detached` (a modern conversation outlives it).
    if (!detached && (request.res.destroyed || request.res.writableEnded)) {
      lease.release();
      await lease.child.close();
      return undefined;
    }
    const transport = create();
    const session = this.connect(transport, lease, request.spec, kind, request.principal);
    try {
      await session.bridge.start();
    } catch (error) {
      await session.close('start failed');
      throw error;
    }
    this.deps.onConnected?.(kind, lease.child.pooled, (performance.now() - started) / 1000);
    return session;
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

  /** Checks limits and env headers (429/400), then starts a child (502/503 on failure). */
  private async leaseChild({ req, spec, principal, grantEnv }: RoutedRequest): Promise<Lease> {
    const key = clientKey(principal);
    const max = this.deps.limits.maxSessionsPerClient;
    const acceptEnv = () => validateEnvHeaders(requestEnvEntries(req.headersDistinct, grantEnv), spec, { mode: this.deps.limits.envMode });
    await this.makeRoomFor(key, max, acceptEnv);
    const opening = this.opening.get(key) ?? 0;
    if (this.deps.sessions.countByClient(key) + opening >= max) {
      throw new LimitReachedError('maxSessionsPerClient', max, 5, 'rate_limited');
    }
    const accepted = acceptEnv();
    this.opening.set(key, opening + 1);
    let release: (() => void) | undefined;
    try {
      release = (await this.deps.slots?.take(key, max)) ?? (() => undefined);
      return { child: await this.deps.processes.lease(spec, accepted), clientKey: key, release };
    } catch (error) {
      release?.();
      throw error;
    } finally {
      const left = (this.opening.get(key) ?? 1) - 1;
      if (left > 0) this.opening.set(key, left);
      else this.opening.delete(key);
    }
  }

  /**
   * At the client's session limit, its least recently used session that has been idle long
   * enough gives way; never for a request that will be refused anyway (its ENV_* headers).
   */
  private async makeRoomFor(key: string, max: number, acceptEnv: () => unknown): Promise<void> {
    const full = () => this.deps.sessions.countByClient(key) + (this.opening.get(key) ?? 0) >= max;
    if (!this.deps.evictor || !full()) return;
    try {
      acceptEnv();
    } catch {
      return; // refused below, as before: the limit first, then the headers
    }
    const idleMs = this.deps.limits.evictIdleMs ?? 300_000;
    for (let tries = 0; tries < 3 && full(); tries += 1) {
      if (!(await this.deps.evictor.forClient(key, idleMs))) return; // nothing idle enough: refused below
    }
  }

  /** Ties `transport` and the leased child together and registers the session. */
  private connect<K extends TransportKind>(transport: ClientTransportOf[K], lease: Lease, spec: CommandSpec, kind: K, principal: Principal): Session<K> {
    const { logger, sessions, audit } = this.deps;
    const { child } = lease;
    // Assigned once, after the closures that read it (the guard's tag, the bridge's activity hook).
    // eslint-disable-next-line prefer-const
    let session: Session<K> | undefined;
    const guard = new PolicyGuard(this.deps.guard, {
      principal,
      commandKey: spec.key,
      clientKey: lease.clientKey,
      sessionTag: () => session?.idHash,
      era: kind === 'modern' ? 'modern' : 'legacy',
    });
    const bridge = new Bridge(transport, child, {
      logger,
      tags: { command: spec.key, transport: kind },
      onActivity: () => session?.touch(),
      guard,
      requestSeconds: this.deps.requestSeconds,
      initializeTimeoutMs: this.deps.limits.initializeTimeoutMs,
    });
    session = new Session(transport.sessionId, kind, spec.key, principal, lease.clientKey, transport, bridge);
    const opened = session;
    bridge.onclosing = () => sessions.delete(opened);
    bridge.onclose = () => {
      lease.release();
      logger.info('session closed', { session: opened.idHash, command: spec.key, transport: kind });
      audit.record('session_close', {
        session: opened.idHash,
        command: spec.key,
        transport: kind,
        clientId: principal.clientId,
        durationMs: Date.now() - opened.createdAt,
      });
    };
    sessions.add(session);
    const fields = {
      session: session.idHash,
      command: spec.key,
      transport: kind,
      era: kind === 'modern' ? 'modern' : 'legacy',
      pid: child.pid,
      clientId: principal.clientId,
      role: principal.role,
      ...(principal.via ? { via: principal.via } : {}),
    };
    logger.info('session opened', fields);
    audit.record('session_open', fields);
    return session;
  }
}
