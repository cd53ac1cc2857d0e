/**
 * Dynamic client registration (RFC 7591, POST /register): open to anyone, so rate-limited per
 * source address; what it registers is sealed into the client_id (src/oauth/registration.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readJsonBody } from '../http/body.js';
import { retryAfterSeconds } from '../ratelimit/httpLimits.js';
import type { AuthServerContext } from './context.js';
import { OAuthError, writeJson } from './respond.js';

const REGISTER_LIMIT_BYTES = 16 * 1024;

export async function registerEndpoint(ctx: AuthServerContext, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const address = ctx.addressOf(req);
  const decision = await ctx.registerLimiter?.consume(address);
  if (decision && !decision.allowed) {
    const seconds = retryAfterSeconds(decision.retryAfterMs);
    throw new OAuthError('temporarily_unavailable', `too many registrations from this address; try again in ${seconds} s`, 429, {
      'Retry-After': String(seconds),
    });
  }
  const body = await readJsonBody(req, { limitBytes: REGISTER_LIMIT_BYTES, strict: false });
  if (!body) return;
  const answer = ctx.registrations.register(body.value, ctx.now());
  ctx.audit.record('oauth_register', { client: answer.client_name, address, authMethod: answer.token_endpoint_auth_method });
  writeJson(res, 201, answer);
}
