/**
 * The admin credential: `WARDEN_ADMIN_TOKEN` and clients-file entries marked `"admin": true`.
 * In this gateway's model clients hold the shared secret or a client token and use MCP
 * endpoints; administrators see and change what runs. Neither credential opens the other's
 * routes: an admin token is refused on MCP endpoints, a client credential on admin routes.
 */
import { digest, type Principal, type TokenVerifier } from './bearer.js';
import { knownTokenVerifier, type KnownToken } from './clients.js';

/** The principal of `WARDEN_ADMIN_TOKEN`. */
export const ADMIN_PRINCIPAL: Principal = Object.freeze({ kind: 'admin', clientId: 'warden:admin', role: 'admin' });

/** Verifies admin tokens; undefined when no admin credential is configured. */
export function adminVerifier(adminToken: string | undefined, fileAdmins: readonly KnownToken[]): TokenVerifier | undefined {
  const known = [...(adminToken === undefined ? [] : [{ digest: digest(adminToken), principal: ADMIN_PRINCIPAL }]), ...fileAdmins];
  return known.length === 0 ? undefined : knownTokenVerifier(known);
}

/** What a client credential on an admin route is told. */
export const ADMIN_HINT =
  'this needs the admin credential: set WARDEN_ADMIN_TOKEN (or mark a clients-file entry "admin": true) and send it as Authorization: Bearer <token>';
