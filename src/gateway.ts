/**
 * createGateway: builds every part from settings and returns something that listens and
 * closes. Used by the CLI and by tests (in-process, on a random port).
 */
import type { AddressInfo } from 'node:net';
import { createServer, type Server } from 'node:http';
import { createApp } from './app.js';
import { sharedSecretVerifier } from './auth/bearer.js';
import { CommandRegistry } from './commands/registry.js';
import { loadCommandsFile } from './config/commands.js';
import type { Settings } from './config/settings.js';
import { defaultHostGuard } from './http/hostGuard.js';
import type { Logger } from './logging/logger.js';
import { ProcessManager } from './process/manager.js';
import { statusRoute } from './status/status.js';
import { SessionReaper } from './transports/reaper.js';
import { SessionFactory, type SessionLimits } from './transports/sessionFactory.js';
import { SessionStore } from './transports/sessions.js';
import { SseHandler } from './transports/sse.js';
import { StreamableHandler } from './transports/streamableHttp.js';

export interface GatewayDeps {
  readonly logger: Logger;
  /** Overrides loading `settings.commandsFile`. */
  readonly registry?: CommandRegistry;
}

export interface Gateway {
  readonly server: Server;
  readonly sessions: SessionStore;
  readonly processes: ProcessManager;
  readonly registry: CommandRegistry;
  /** Listens on settings.host/port; resolves with the bound address. */
  listen(): Promise<AddressInfo>;
  /** Drains: refuses new work, closes sessions, stops every child tree. Idempotent. */
  close(): Promise<void>;
}

export async function createGateway(settings: Settings, deps: GatewayDeps): Promise<Gateway> {
  const { logger } = deps;
  if (!settings.secret) throw new TypeError('settings.secret is required: the gateway never runs without a secret');
  const registry = deps.registry ?? new CommandRegistry(await loadCommandsFile(settings.commandsFile));
  const sessions = new SessionStore();
  const processes = new ProcessManager({
    logger,
    child: {
      maxLineBytes: settings.maxLineBytes,
      stopTimeouts: { eofMs: settings.stopEofMs, termMs: settings.stopTermMs, killMs: settings.stopKillMs },
    },
    startAttempts: settings.startAttempts,
    retryBaseMs: settings.retryBaseMs,
    startupWindowMs: settings.startupWindowMs,
    circuit: { baseCooldownMs: settings.circuitCooldownMs, maxCooldownMs: Math.max(settings.circuitCooldownMs, 300_000) },
    limits: {
      maxChildren: settings.maxChildren,
      spawnConcurrency: settings.spawnConcurrency,
      poolMin: settings.poolMin,
      spareTtlMs: settings.spareTtlMs,
    },
  });
  const sessionLimits: SessionLimits = {
    maxSessionsPerClient: settings.maxSessionsPerClient,
    maxClientBacklogBytes: settings.maxClientBacklogBytes,
    maxChildQueueBytes: settings.maxChildQueueBytes,
    trustFlyClientIp: settings.trustFlyClientIp,
  };
  const factory = new SessionFactory({ logger, sessions, processes, limits: sessionLimits });
  const reaping = { idleTimeoutMs: settings.idleTimeoutMs, maxSessionMs: settings.maxSessionMs };
  const reaper = new SessionReaper(sessions, { ...reaping, logger });
  const startedAt = Date.now();
  let draining = false;
  const server = createServer();
  // Event streams stay open for hours; the request timeout must not cut them.
  server.requestTimeout = 0;
  server.headersTimeout = 30_000;
  server.keepAliveTimeout = 65_000;

  const buildApp = (port: number) =>
    createApp({
      logger,
      registry,
      verifyToken: sharedSecretVerifier(settings.secret!),
      hostGuard: {
        ...defaultHostGuard(settings.host, port),
        ...(settings.allowedHosts ? { allowedHosts: settings.allowedHosts } : {}),
        ...(settings.allowedOrigins ? { allowedOrigins: settings.allowedOrigins } : {}),
      },
      bodyLimitBytes: settings.bodyLimitBytes,
      sse: new SseHandler(factory, sessions, { keepAliveMs: settings.keepAliveMs }),
      streamable: new StreamableHandler(factory, sessions, { keepAliveMs: settings.keepAliveMs }),
      isDraining: () => draining,
      extraRoutes: (app) => {
        app.get('/status', statusRoute({ registry, sessions, processes, sessionLimits, reaping, startedAt, isDraining: () => draining }));
      },
    });

  let closing: Promise<void> | undefined;
  const gateway: Gateway = {
    server,
    sessions,
    processes,
    registry,
    listen: () =>
      new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(settings.port, settings.host, () => {
          server.off('error', reject);
          const address = server.address() as AddressInfo;
          // The origin allowlist depends on the port actually bound (port 0 picks one).
          server.on('request', buildApp(address.port));
          reaper.start();
          processes.warm(registry.keys().map((key) => registry.get(key)!));
          logger.info('listening', { host: settings.host, port: address.port, commands: registry.size });
          resolve(address);
        });
      }),
    close: () => {
      closing ??= (async () => {
        draining = true;
        reaper.stop();
        logger.info('draining', { sessions: sessions.size, children: processes.total() });
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        // Streams end (clients reconnect elsewhere) while every child tree stops in parallel.
        await Promise.allSettled([sessions.closeAll('shutdown'), processes.closeAll()]);
        server.closeAllConnections();
        await stopped;
        logger.info('stopped');
      })();
      return closing;
    },
  };
  return gateway;
}
