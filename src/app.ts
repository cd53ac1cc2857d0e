/**
 * The pages behind the request pipeline: an Express app for what is not on the message
 * path (the admin routes; with OAuth on, its metadata documents, endpoints and admin API).
 * Authentication already happened in the pipeline (`req.principal`, `req.access`); this
 * only routes and renders.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import express, { type ErrorRequestHandler, type Express, type RequestHandler } from 'express';
import { UnknownCommandError, WardenError } from './errors.js';
import { writeError } from './http/respond.js';
import type { Logger } from './logging/logger.js';

export interface PagesDeps {
  readonly logger: Logger;
  /** `/status`: clients get a summary, admins the details. */
  readonly status: RequestHandler;
  /** `/metrics` for admins; absent when metrics are served on their own port. */
  readonly metrics?: RequestHandler;
  /** OAuth's routes (src/oauth/server.ts): true when it answered. */
  readonly oauth?: (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;
  /** `/admin/commands`, the whitelist's admin API; absent without an admin credential. */
  readonly commands?: RequestHandler;
}

declare module 'express-serve-static-core' {
  interface Request {
    /** What the credential opened, set by the pipeline on admin routes. */
    access?: 'admin' | 'client';
  }
}

export function createPagesApp(deps: PagesDeps): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.get('/status', deps.status);
  if (deps.metrics) app.get('/metrics', deps.metrics);
  if (deps.commands) app.use('/admin/commands', deps.commands);
  const oauth = deps.oauth;
  if (oauth) {
    app.use((req, res, next) => {
      oauth(req, res).then((answered) => (answered ? undefined : next()), next);
    });
  }
  app.use((_req, res) => writeError(res, new UnknownCommandError()));
  app.use(errorHandler(deps.logger));
  return app;
}

function errorHandler(logger: Logger): ErrorRequestHandler {
  return (error: unknown, _req, res, _next) => {
    if (!(error instanceof WardenError)) logger.error('unhandled request error', { error: error instanceof Error ? error.stack : String(error) });
    writeError(res, error);
  };
}
