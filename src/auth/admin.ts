/**
 * The admin credential: `WARDEN_ADMIN_TOKEN` and clients-file entries marked `"admin": true`.
 * In this gateway's model clients hold the shared secret or a client token and use MCP
 * endpoints; administrators see and change what runs. Neither credential opens the other's
 * routes: an admin token is refused on MCP endpoints, a client credential on admin routes.
 */
import type { Request, RequestHandler } from 'express';
import { ForbiddenError, UnauthorizedError } from '../errors.js';
import { sendError } from '../http/respond.js';
import { bearerToken, digest, unauthorizedReason, type BearerOptions, type Principal, type TokenVerifier } from './bearer.js';
import { knownTokenVerifier, type KnownToken } from './clients.js';

/** The principal of `WARDEN_ADMIN_TOKEN`. */
export const ADMIN_PRINCIPAL: Principal = Object.freeze({ kind: 'admin', clientId: 'warden:admin', role: 'admin' });

/** Verifies admin tokens; undefined when no admin credential is configured. */
export function adminVerifier(adminToken: string | undefined, fileAdmins: readonly KnownToken[]): TokenVerifier | undefined {
  const known = [...(adminToken === undefined ? [] : [{ digest: digest(adminToken), principal: ADMIN_PRINCIPAL }]), ...fileAdmins];
  return known.length === 0 ? undefined : knownTokenVerifier(known);
}

/** What an admin-route request proved: an administrator, a client, or (refused) nothing. */
export type AdminAccess = 'admin' | 'client';

declare module 'express-serve-static-core' {
  interface Request {
    access?: AdminAccess;
  }
}

export const ADMIN_HINT =
  'this needs the admin credential: set WARDEN_ADMIN_TOKEN (or mark a clients-file entry "admin": true) and send it as Authorization: Bearer <token>';

/**
 * Authenticates an admin route: an admin token sets `req.access = 'admin'`; a client
 * credential sets `'client'` when `clientsAllowed` (the route then answers less), else 403;
 * nothing valid is 401, through the same failed-login throttle as every route.
 */
export function adminAuth(options: BearerOptions & { readonly verifyAdmin: TokenVerifier | undefined; readonly clientsAllowed: boolean }): RequestHandler {
  return async (req: Request, res, next) => {
    const token = bearerToken(req);
    const admin = token === undefined ? undefined : options.verifyAdmin?.(token);
    if (admin) {
      req.access = 'admin';
      req.principal = admin;
      return next();
    }
    const client = token === undefined ? undefined : options.verify(token);
    if (client) {
      if (!options.clientsAllowed) return sendError(res, new ForbiddenError(ADMIN_HINT));
      req.access = 'client';
      req.principal = client;
      return next();
    }
    const address = options.addressOf(req);
    try {
      await options.throttle?.check(address);
    } catch (error) {
      return sendError(res, error);
    }
    const message = unauthorizedReason(req, token, req.query);
    options.onFailure?.(req, message);
    await options.throttle?.fail(address).catch(() => undefined);
    sendError(res, new UnauthorizedError(message));
  };
}
