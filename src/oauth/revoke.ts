/**
 * Revocation (RFC 7009, POST /revoke). Revoking either of a grant's tokens revokes the grant (access tokens are self-contained,
 * so the grant is what can be withdrawn): its refresh token stops working and so do its
 * access tokens, on every machine sharing the store. The answer is 200 whether or not the
 * token was known, and a client can only revoke what was issued to it.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFormBody } from '../http/body.js';
import { FORM_LIMIT_BYTES, type AuthServerContext } from './context.js';
import type { GrantClaims } from './grants.js';
import { OAuthError } from './respond.js';

export async function revokeEndpoint(ctx: AuthServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const form = await readFormBody(req, FORM_LIMIT_BYTES);
  if (!form) return;
  const client = await ctx.clients.authenticate(req, form);
  const token = form.get('token');
  if (!token) throw new OAuthError('invalid_request', 'token is required');
  const hint = form.get('token_type_hint');
  if (hint !== null && hint !== 'access_token' && hint !== 'refresh_token')
    throw new OAuthError('unsupported_token_type', 'token_type_hint must be access_token or refresh_token');
  let claims: GrantClaims | undefined;
  for (const open of hint === 'access_token' ? [ctx.seals.openAccess, ctx.seals.openRefresh] : [ctx.seals.openRefresh, ctx.seals.openAccess]) {
    const opened = open.call(ctx.seals, token);
    if (opened.ok) {
      claims = opened.value;
      break;
    }
  }
  if (claims && claims.c === client.id) {
    try {
      if (await ctx.store.revoke(claims.g)) ctx.audit.record('oauth_revoke', { grant: claims.g, reason: 'revoked by the client' });
    } catch {
      throw new OAuthError('temporarily_unavailable', 'the grant store did not answer; try again', 503, { 'Retry-After': '1' });
    }
  }
  res.writeHead(200, { 'Cache-Control': 'no-store', 'Content-Length': '0' }).end();
}
