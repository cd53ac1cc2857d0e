/**
 * createApp: middleware order and routes, nothing else (no listen, no globals).
 * Request path: health -> host/origin guard -> drain guard -> bearer auth ->
 * command lookup -> body parsing -> transport handler. Errors end in one handler.
 */
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import { adminAuth } from './auth/admin.js';
import { requireBearer, type BearerOptions, type TokenVerifier } from './auth/bearer.js';
import type { CommandRegistry } from './commands/registry.js';
import { DrainingError, PayloadTooLargeError, WardenError } from './errors.js';
import { commandOf, commandRoute } from './http/commandRoute.js';
import { keepRawBody, rejectAmbiguousBodies } from './http/ambiguity.js';
import { hostGuard, type HostGuardOptions } from './http/hostGuard.js';
import { sendError, type RejectionHook } from './http/respond.js';
import type { Logger } from './logging/logger.js';
import type { SseHandler } from './transports/sse.js';
import type { StreamableHandler } from './transports/streamableHttp.js';

export interface AppDeps {
  readonly logger: Logger;
  readonly registry: CommandRegistry;
  readonly auth: BearerOptions;
  /** Per-client HTTP rate limit, after authentication. */
  readonly httpRateLimit?: RequestHandler;
  readonly hostGuard: HostGuardOptions;
  readonly bodyLimitBytes: number;
  readonly sse: SseHandler;
  readonly streamable: StreamableHandler;
  /** True when a tool policy is loaded: ambiguous bodies are then denied. */
  readonly policyActive: () => boolean;
  /** True once shutdown began: new requests get 503. */
  readonly isDraining: () => boolean;
  /** Told of every rejection (e.g. to count rate-limited requests). */
  readonly onRejection?: RejectionHook;
  /** Admin routes: `/status` (clients get a summary, admins the details) and `/metrics` (admins). */
  readonly admin: {
    readonly verifyAdmin: TokenVerifier | undefined;
    readonly status: RequestHandler;
    /** Absent when metrics are served on their own port. */
    readonly metrics?: RequestHandler;
  };
}

export function createApp(deps: AppDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.locals.onRejection = deps.onRejection;

  app.get('/health', (_req, res) => {
    res.status(deps.isDraining() ? 503 : 200).json({ status: deps.isDraining() ? 'draining' : 'ok' });
  });

  app.use(hostGuard(deps.hostGuard, deps.logger));
  app.use(drainGuard(deps.isDraining));
  const limited = deps.httpRateLimit ? [deps.httpRateLimit] : [];
  app.get('/status', adminAuth({ ...deps.auth, verifyAdmin: deps.admin.verifyAdmin, clientsAllowed: true }), ...limited, deps.admin.status);
  if (deps.admin.metrics) {
    app.get('/metrics', adminAuth({ ...deps.auth, verifyAdmin: deps.admin.verifyAdmin, clientsAllowed: false }), ...limited, deps.admin.metrics);
  }
  app.use(requireBearer(deps.auth));
  if (deps.httpRateLimit) app.use(deps.httpRateLimit);
  app.use(commandRoute(deps.registry));
  app.use(express.json({ limit: deps.bodyLimitBytes, type: 'application/json', verify: keepRawBody }));
  app.use(rejectAmbiguousBodies(deps.policyActive));

  app.use((req, res, next) => {
    const route = `${req.method} ${req.endpoint}`;
    if (route === 'GET sse') return deps.sse.open(req, res);
    if (route === 'POST messages') {
      const sessionId = typeof req.query.sessionId === 'string' ? req.query.sessionId : undefined;
      return deps.sse.post({ spec: commandOf(req), principal: req.principal!, body: req.body, sessionId }, res);
    }
    if (req.endpoint === 'mcp' && ['GET', 'POST', 'DELETE'].includes(req.method)) return deps.streamable.handle(req, res);
    next(new WardenError('method_not_allowed', `${req.method} is not supported on /${req.endpoint}`, { headers: { Allow: ALLOWED_METHODS[req.endpoint ?? ''] ?? 'GET, POST, DELETE' } }));
  });

  app.use(errorHandler(deps.logger, deps.bodyLimitBytes));
  return app;
}

const ALLOWED_METHODS: Readonly<Record<string, string>> = { sse: 'GET', messages: 'POST', mcp: 'GET, POST, DELETE' };

function drainGuard(isDraining: () => boolean): RequestHandler {
  return (_req, res, next) => {
    if (isDraining()) {
      res.setHeader('Connection', 'close');
      sendError(res, new DrainingError());
      return;
    }
    next();
  };
}

/** Maps body-parser failures and anything thrown to the JSON-RPC error body. */
function errorHandler(logger: Logger, bodyLimitBytes: number): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    const type = (error as { type?: string }).type;
    if (type === 'entity.too.large') return sendError(res, new PayloadTooLargeError(bodyLimitBytes));
    if (type === 'entity.parse.failed') return sendError(res, new WardenError('parse_error', 'Parse error: request body is not valid JSON'));
    if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
      return sendError(res, new WardenError('bad_request', 'unsupported body encoding'));
    }
    if (type === 'request.aborted') return;
    if (!(error instanceof WardenError)) logger.error('unhandled request error', { error: error instanceof Error ? error.stack : String(error) });
    else if (error.status >= 500) logger.warn('request failed', { code: error.code, message: error.message });
    sendError(res, error);
  };
}
