/**
 * The request listener: every request is routed once (src/http/routes.ts), runs the checks
 * its route class declares from the one list (src/http/checks.ts), then reaches its
 * handler: the MCP transports for message routes (as a RoutedRequest, without Express),
 * `/health` directly, and an Express app for the admin and OAuth pages. Every rejection
 * leaves through `reject`: the rejection hook (metrics), one log rule, and the error writer
 * of the route's class (JSON-RPC errors, or the OAuth format on the OAuth routes).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { toWardenError, WardenError } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import type { RoutedRequest } from '../transports/routed.js';
import { HANDLED, type Check, type Checks, type RequestContext } from './checks.js';
import { writeOAuthRefusal } from '../oauth/respond.js';
import { writeError } from './respond.js';
import { routeOf, sessionIdOf, type Route, type RouteClass } from './routes.js';

export interface PipelineDeps {
  readonly logger: Logger;
  readonly checks: Checks;
  readonly isDraining: () => boolean;
  /** The MCP endpoints, once every check passed. */
  readonly messages: (request: RoutedRequest) => void | Promise<void>;
  /** Admin and OAuth pages (an Express app), once their checks passed. */
  readonly pages: (req: IncomingMessage & { principal?: unknown; access?: unknown }, res: ServerResponse) => void;
  /** Told of every rejection (e.g. to count rate-limited requests). */
  readonly onRejection?: (error: WardenError) => void;
}

/** The checks of each route class, in the one order. */
function checksByClass(checks: Checks): Readonly<Record<RouteClass, readonly Check[]>> {
  return {
    message: [
      checks.drain,
      checks.hostOrigin,
      checks.preflight,
      checks.credentials,
      checks.machine,
      checks.rateLimit,
      checks.command,
      checks.method,
      checks.body,
    ],
    admin: [checks.drain, checks.hostOrigin, checks.adminCredentials, checks.rateLimit],
    oauth: [checks.drain, checks.hostOrigin, checks.preflight],
    metadata: [checks.hostOrigin, checks.preflight],
  };
}

export function createPipeline(deps: PipelineDeps): (req: IncomingMessage, res: ServerResponse) => void {
  const byClass = checksByClass(deps.checks);

  const reject = (res: ServerResponse, error: unknown, route: Route): void => {
    const warden = toWardenError(error);
    deps.onRejection?.(warden);
    if (!(error instanceof WardenError)) deps.logger.error('unhandled request error', { error: error instanceof Error ? error.stack : String(error) });
    else if (warden.status >= 500) deps.logger.warn('request refused', { code: warden.code, message: warden.message });
    if (route.class === 'oauth') writeOAuthRefusal(res, warden, route.path);
    else writeError(res, warden);
  };

  /** Runs `checks` in order; true when all passed (a rejection has then not been written). */
  const passes = async (ctx: RequestContext, checks: readonly Check[]): Promise<boolean> => {
    for (const check of checks) {
      let verdict = check(ctx);
      if (verdict instanceof Promise) verdict = await verdict;
      if (verdict === HANDLED) return false;
      if (verdict) {
        reject(ctx.res, verdict, ctx.route);
        return false;
      }
    }
    return true;
  };

  const serve = async (ctx: RequestContext): Promise<void> => {
    const { req, res, route } = ctx;
    if (route.path === '/health') {
      const draining = deps.isDraining();
      res.writeHead(draining ? 503 : 200, { 'Content-Type': 'application/json; charset=utf-8' }).end(JSON.stringify({ status: draining ? 'draining' : 'ok' }));
      return;
    }
    if (!(await passes(ctx, byClass[route.class]))) return;
    if (route.class !== 'message') {
      Object.assign(req, { principal: ctx.principal, access: ctx.access });
      deps.pages(req, res);
      return;
    }
    await deps.messages({
      req,
      res,
      spec: ctx.spec!,
      endpoint: route.endpoint!,
      principal: ctx.principal!,
      body: ctx.body,
      ...(ctx.grantEnv ? { grantEnv: ctx.grantEnv } : {}),
      sessionId: sessionIdOf(route, req.headers),
    });
  };

  return (req, res) => {
    const ctx: RequestContext = { req, res, route: routeOf(req.url ?? '/') };
    serve(ctx).catch((error: unknown) => reject(res, error, ctx.route));
  };
}
