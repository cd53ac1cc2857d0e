/**
 * createGateway: builds every part from settings and returns something that listens and
 * closes. Used by the CLI and by tests (in-process, on a random port).
 */
import type { AddressInfo } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createPagesApp } from './app.js';
import { Conversations, deploymentKey } from './modern/conversations.js';
import { ModernHandler } from './modern/handler.js';
import { RequestStateSealer } from './modern/requestState.js';
import { PACKAGE_VERSION } from './version.js';
import { AuditLog } from './audit/auditLog.js';
import { CapacitySetup } from './capacity/setup.js';
import { CapacityMetrics } from './metrics/capacityMetrics.js';
import { adminVerifier } from './auth/admin.js';
import { sharedSecretVerifier } from './auth/bearer.js';
import { loadClientsFile, multiTokenVerifier } from './auth/clients.js';
import type { CommandRegistry } from './commands/registry.js';
import type { Settings } from './config/settings.js';
import { addressResolver } from './http/clientAddress.js';
import { defaultMaxConnections, fileDescriptorLimit } from './http/connectionLimits.js';
import { buildChecks } from './http/checks.js';
import { createPipeline } from './http/pipeline.js';
import { defaultHostGuard, hostCheck } from './http/hostGuard.js';
import type { OAuthServer } from './oauth/server.js';
import { checkOAuthSettings, oauthSetup, resolveProvider } from './oauth/setup.js';
import type { WardenError } from './errors.js';
import type { Logger } from './logging/logger.js';
import { compilePolicy, type CompiledPolicy } from './policy/compile.js';
import { Metrics } from './metrics/metrics.js';
import { PolicyStats } from './policy/stats.js';
import { PolicyStore } from './policy/store.js';
import { ProcessManager } from './process/manager.js';
import { AuthThrottle, takeRequest } from './ratelimit/httpLimits.js';
import { createLimiterStore, type LimiterStore } from './ratelimit/limiter.js';
import { ToolRateLimits } from './ratelimit/toolLimits.js';
import { statusRoute } from './status/status.js';
import { SessionReaper } from './transports/reaper.js';
import { SessionFactory, type SessionLimits } from './transports/sessionFactory.js';
import { SessionStore } from './transports/sessions.js';
import { SseHandler } from './transports/sse.js';
import type { MachineSource } from './fly/machines.js';
import { flyRouter, sharedSessionSlots } from './fly/setup.js';
import { StreamableHandler } from './transports/streamableHttp.js';
import { commandsApi } from './whitelist/adminApi.js';
import { LiveWhitelist } from './whitelist/live.js';
import { openWhitelist } from './whitelist/open.js';
import { retiredSpecs } from './whitelist/retired.js';

export interface GatewayDeps {
  readonly logger: Logger;
  /** Overrides loading `settings.commandsFile`. */
  readonly registry?: CommandRegistry;
  /** On Fly.io (`settings.flyMachineId`): overrides the live machine list (by default Fly's DNS). */
  readonly machines?: MachineSource;
  /**
   * Certificate authorities trusted, besides the system's, when OAuth fetches a client
   * metadata document (tests serve theirs with a certificate of their own).
   */
  readonly oauthMetadataCa?: string | Buffer;
  /** The gateway's own resident memory, bytes (a gateway inside a test runner passes a fixed figure). @default process.memoryUsage.rss() */
  readonly gatewayRss?: () => number;
}

export interface Gateway {
  readonly server: Server;
  readonly sessions: SessionStore;
  readonly processes: ProcessManager;
  readonly registry: CommandRegistry;
  /** The whitelist as it follows its file or Redis; undefined when `deps.registry` was given. */
  readonly whitelist: LiveWhitelist | undefined;
  readonly policy: PolicyStore | undefined;
  /** Memory sampling, the budget, eviction and hibernation. */
  readonly capacity: CapacitySetup;
  /** Listens on settings.host/port; resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /** Drains: refuses new work, closes sessions, stops every child tree. Idempotent. */
  close(): Promise<void>;
}

/** Built-in redaction used when no policy file configures it. */
function defaultRedaction(): CompiledPolicy['redaction'] {
  return compilePolicy({ name: 'built-in' }).redaction;
}

export async function createGateway(settings: Settings, deps: GatewayDeps): Promise<Gateway> {
  const { logger } = deps;
  if (!settings.secret) throw new TypeError('settings.secret is required: the gateway never runs without a secret');
  checkOAuthSettings(settings);
  // An external identity provider's keys are found before anything is opened: a provider
  // that cannot be reached stops the start, saying where it looked.
  const provider = await resolveProvider(settings);
  const whitelist = deps.registry ? { registry: deps.registry, source: undefined } : await openWhitelist(settings, logger);
  const registry = whitelist.registry;
  let clients: ReturnType<typeof loadClientsFile> | undefined;
  let policy: PolicyStore | undefined;
  try {
    clients = settings.clientsFile ? loadClientsFile(settings.clientsFile) : undefined;
    policy = settings.policyFile
      ? PolicyStore.load(settings.policyFile, { logger, pollMs: settings.policyPollMs, commandKeys: () => registry.keys() })
      : undefined;
  } catch (error) {
    await whitelist.source?.close();
    throw error;
  }
  const audit =
    settings.auditFile || settings.auditStderr
      ? await AuditLog.open({
          file: settings.auditFile,
          stderr: settings.auditStderr,
          hmacKey: settings.auditHmacKey,
          onError: (error) => logger.error('audit write failed', { error: error.message }),
          onGap: (gap) => logger.error(`audit trail: ${gap.message}`, { event: gap.event }),
        })
      : AuditLog.disabled();
  let limiterStore: LimiterStore;
  try {
    limiterStore = await createLimiterStore({ redisUrl: settings.redisUrl, keyPrefix: settings.redisPrefix, logger });
  } catch (error) {
    await Promise.allSettled([audit.close(), whitelist.source?.close()]);
    throw error;
  }

  const sessions = new SessionStore();
  const metrics = new Metrics();
  const capacityMetrics = new CapacityMetrics(metrics.register);
  const capacity = new CapacitySetup(settings, { logger, metrics: capacityMetrics, gatewayRss: deps.gatewayRss });
  const processes = new ProcessManager({
    logger,
    audit,
    metrics,
    onSpawn: (child) => capacity.sampler.track(child),
    memory: capacity.capacity,
    hibernation: capacity.hibernation,
    child: {
      bytes: metrics.bytes,
      maxLineBytes: settings.maxLineBytes,
      stopTimeouts: { eofMs: settings.stopEofMs, termMs: settings.stopTermMs, killMs: settings.stopKillMs },
    },
    startAttempts: settings.startAttempts,
    retryBaseMs: settings.retryBaseMs,
    startupWindowMs: settings.startupWindowMs,
    circuit: { baseCooldownMs: settings.circuitCooldownMs, maxCooldownMs: Math.max(settings.circuitCooldownMs, 300_000) },
    eraProbeMs: settings.eraProbeMs,
    limits: {
      maxChildren: settings.maxChildren,
      spawnConcurrency: settings.spawnConcurrency,
      poolMin: settings.poolMin,
      spareTtlMs: settings.spareTtlMs,
    },
  });
  // After the manager: its warm spares are given back before any session (releasers run in order).
  const evictor = capacity.attach(sessions);
  const sessionLimits: SessionLimits = {
    maxSessionsPerClient: settings.maxSessionsPerClient,
    maxClientBacklogBytes: settings.maxClientBacklogBytes,
    maxChildQueueBytes: settings.maxChildQueueBytes,
    initializeTimeoutMs: settings.initializeTimeoutMs,
    envMode: settings.envMode,
    evictIdleMs: settings.evictIdleMs,
  };
  metrics.observe({ registry, sessions, processes });
  const live = whitelist.source && new LiveWhitelist({ registry, source: whitelist.source, processes, sessions, logger, audit, onRemove: settings.onRemove });
  capacityMetrics.observe({ registry, sessions, sampler: capacity.sampler, capacity: capacity.capacity });
  const policyStats = new PolicyStats();
  const sealer = new RequestStateSealer(deploymentKey(settings.secret, 'request state'));
  // On Fly.io: session ids name their machine, and requests go where their session lives.
  const fly = flyRouter(settings, { logger, sealer, machines: deps.machines });
  const slots = sharedSessionSlots(settings, limiterStore, logger);
  const factory = new SessionFactory({
    slots,
    evictor,
    logger,
    sessions,
    processes,
    limits: sessionLimits,
    audit,
    requestSeconds: metrics.requestSeconds,
    onConnected: (kind, pooled, seconds) => metrics.connectSeconds.observe({ transport: kind, pooled: String(pooled) }, seconds),
    guard: {
      onDecision: (outcome) => metrics.policyDecisions.inc({ outcome }),
      policy: () => policy?.current,
      defaultRedaction: defaultRedaction(),
      toolLimits: new ToolRateLimits(limiterStore),
      audit,
      stats: policyStats,
    },
  });
  const reaping = { idleTimeoutMs: settings.idleTimeoutMs, maxSessionMs: settings.maxSessionMs };
  const reaper = new SessionReaper(sessions, { ...reaping, logger });
  const startedAt = Date.now();
  const authThrottle = new AuthThrottle(limiterStore.create('auth-failures', { points: settings.authFailuresPerWindow, durationSeconds: 900 }));
  const requestLimiter =
    settings.httpRequestsPerMinute > 0 ? limiterStore.create('http', { points: settings.httpRequestsPerMinute, durationSeconds: 60 }) : undefined;
  let draining = false;
  // Node checks the request timeout of open connections every connectionsCheckingInterval.
  const server = createServer({ connectionsCheckingInterval: Math.max(100, Math.min(30_000, Math.floor(settings.requestTimeoutMs / 4))) });
  // The request timeout bounds receiving a request (a trickling body); event streams are
  // responses and stay open for hours.
  server.requestTimeout = settings.requestTimeoutMs;
  server.headersTimeout = Math.min(30_000, settings.requestTimeoutMs);
  const fdLimit = fileDescriptorLimit();
  server.maxConnections = settings.maxConnections ?? defaultMaxConnections(fdLimit, settings.maxChildren);
  server.keepAliveTimeout = 65_000;

  const sharedRole = clients?.sharedSecretRole ?? settings.defaultRole;
  const metricsRoute = (_req: IncomingMessage, res: ServerResponse) => {
    metrics.text().then(
      ({ contentType, body }) => res.writeHead(200, { 'Content-Type': contentType }).end(body),
      () => res.writeHead(500).end(),
    );
  };
  // With --metrics-port, a scraper reaches /metrics on its own listener, without the secret.
  const metricsServer =
    settings.metricsPort === undefined
      ? undefined
      : createServer((req, res) => {
          if (req.method === 'GET' && req.url === '/metrics') metricsRoute(req, res);
          else res.writeHead(404).end();
        });
  const verify = clients ? multiTokenVerifier(settings.secret!, sharedRole, clients.tokens) : sharedSecretVerifier(settings.secret!, sharedRole);
  const verifyAdmin = adminVerifier(settings.adminToken, clients?.adminTokens ?? []);
  const addressOf = addressResolver(settings.trustedProxy ?? []);
  // OAuth's grants live where the rate limits do: Redis when there is one, else this process.
  const oauthParts = oauthSetup(
    settings,
    limiterStore,
    {
      ...(deps.oauthMetadataCa === undefined ? {} : { metadataCa: deps.oauthMetadataCa }),
      registry,
      verifyCredential: verify,
      verifyAdmin,
      throttle: authThrottle,
      addressOf,
      audit,
      logger,
      envMode: settings.envMode,
    },
    provider,
  );
  const grantStore = oauthParts?.store;
  let oauth: OAuthServer | undefined;
  const mintSessionId = fly?.mintSessionId;
  const sse = new SseHandler(factory, sessions, { keepAliveMs: settings.keepAliveMs, mintSessionId });
  // Assigned once, after the conversations whose callback reads it.
  // eslint-disable-next-line prefer-const
  let modern: ModernHandler | undefined;
  const conversations = new Conversations(factory, {
    maxEnvVariants: settings.maxEnvVariants,
    fingerprintKey: deploymentKey(settings.secret, 'env fingerprint'),
    policyActive: () => policy !== undefined,
    onToolsListed: (key, tools) => modern?.toolsListed(key, tools),
    eraOf: (spec) => processes.eras.verdict(spec),
    port: {
      logger,
      keepAliveMs: settings.keepAliveMs,
      jsonReplyWindowMs: settings.jsonReplyWindowMs,
      maxBacklogBytes: settings.maxClientBacklogBytes,
      inputTimeoutMs: settings.inputTimeoutMs,
      sealer,
      machine: fly?.self,
      clientInfo: { name: 'mcp-warden', version: PACKAGE_VERSION },
    },
  });
  modern = new ModernHandler({ conversations, policy: () => policy?.current, route: fly?.modern });
  const streamable = new StreamableHandler(
    factory,
    sessions,
    { keepAliveMs: settings.keepAliveMs, jsonReplyWindowMs: settings.jsonReplyWindowMs, mintSessionId },
    modern,
  );
  const onRejection = (error: WardenError) => {
    if (error.code === 'rate_limited' || error.code === 'limit_reached') metrics.rateLimited.inc({ limit: String(error.data?.limit ?? error.code) });
  };
  const isDraining = () => draining;
  const pages = createPagesApp({
    logger,
    status: statusRoute({ registry, sessions, processes, sessionLimits, reaping, startedAt, isDraining, policy, policyStats, capacity }),
    ...(settings.metricsPort === undefined ? { metrics: metricsRoute } : {}),
    ...(oauthParts ? { oauth: (req: IncomingMessage, res: ServerResponse) => (oauth ? oauth.handle(req, res) : Promise.resolve(false)) } : {}),
    // Adding a command runs code on the host: only with an admin credential configured.
    ...(live && verifyAdmin ? { commands: commandsApi(live, logger) } : {}),
  });
  /** The request listener for the bound port (the origin allowlist depends on the port). */
  const buildListener = (port: number) => {
    oauth = oauthParts?.build(port);
    const defaults = defaultHostGuard(settings.host, port);
    const allowedHosts = settings.allowedHosts ?? defaults.allowedHosts;
    const allowedOrigins = settings.allowedOrigins ?? defaults.allowedOrigins;
    // The public origin (set, or OAuth's derived one) is always allowed: the consent page's form posts from it.
    const origin = settings.publicUrl ?? oauth?.resource.publicOrigin;
    const hostOptions = {
      allowedHosts: origin && allowedHosts.length > 0 ? [...allowedHosts, new URL(origin).host] : allowedHosts,
      allowedOrigins: origin ? [...allowedOrigins, origin] : allowedOrigins,
    };
    const checks = buildChecks({
      isDraining,
      hostCheck: hostCheck(hostOptions, logger),
      registry,
      retired: retiredSpecs(registry, sessions),
      verify,
      verifyAdmin,
      addressOf,
      authThrottle,
      onAuthFailure: (req, path, reason) => audit.record('auth_failure', { address: addressOf(req), reason, path }),
      takeRequest: requestLimiter && ((key) => takeRequest(requestLimiter, key)),
      bodyLimitBytes: settings.bodyLimitBytes,
      policyActive: () => policy !== undefined,
      sessionMachine: fly?.sessionCheck,
      drainHeaders: fly?.drainHeaders,
      ...(oauth ? { oauth: { verifier: oauth.verifier, resource: oauth.resource } } : {}),
    });
    return createPipeline({
      logger,
      checks,
      isDraining,
      onRejection,
      pages,
      messages: (request) =>
        request.endpoint === 'sse' ? sse.open(request) : request.endpoint === 'messages' ? sse.post(request) : streamable.handle(request),
    });
  };

  let closing: Promise<void> | undefined;
  return {
    server,
    sessions,
    processes,
    registry,
    whitelist: live,
    policy,
    capacity,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(settings.port, settings.host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          // The origin allowlist depends on the port actually bound (port 0 picks one).
          server.on('request', buildListener(address.port));
          reaper.start();
          capacity.start(registry.specs());
          fly?.start();
          policy?.watch();
          live?.watch();
          processes.warm(registry.specs());
          if (oauth && oauthParts?.mode === 'external') {
            logger.info('OAuth on, with an external identity provider', { issuer: oauth.issuer, jwks: provider?.jwksUri, from: provider?.source });
          } else if (oauth) {
            logger.info('OAuth on', { issuer: oauth.issuer, grants: grantStore?.shared ? 'redis' : 'memory' });
            if (!grantStore?.shared)
              logger.warn('OAuth grants are kept in this process only: a restart signs every OAuth client out; set REDIS_URL to keep them');
          }
          logger.info('listening', {
            host: settings.host,
            port: address.port,
            commands: registry.size,
            policy: policy?.current.name,
            fdLimit: fdLimit ?? 'unknown',
            maxConnections: server.maxConnections,
            ...(fly ? { machine: fly.self } : {}),
          });
          if (metricsServer) {
            metricsServer.once('error', (error) => logger.error('metrics listener failed', { error: error.message }));
            metricsServer.listen(settings.metricsPort, settings.host, () =>
              logger.info('metrics listening', { port: (metricsServer.address() as AddressInfo).port }),
            );
          }
          resolve(address);
        });
      }),
    close: () => {
      closing ??= (async () => {
        draining = true;
        reaper.stop();
        capacity.stop();
        fly?.close();
        policy?.close();
        const whitelistClosed = live?.close();
        logger.info('draining', { sessions: sessions.size, children: processes.total() });
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        // Streams end (clients reconnect elsewhere) while every child tree stops in parallel.
        await Promise.allSettled([sessions.closeAll('shutdown'), processes.closeAll()]);
        server.closeAllConnections();
        metricsServer?.close();
        metricsServer?.closeAllConnections();
        await stopped;
        await slots?.close(); // before the Redis client it uses is quit
        await Promise.allSettled([audit.close(), limiterStore.close(), whitelistClosed]);
        logger.info('stopped');
      })();
      return closing;
    },
  };
}
