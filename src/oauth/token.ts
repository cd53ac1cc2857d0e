/**
 * The token endpoint (POST /token): an authorization code (single use; its client, redirect
 * URI, PKCE verifier and resource checked) becomes a grant and its first tokens; a refresh
 * token rotates (each generation once; a repeat of the one just rotated, inside the grace
 * window, gets the same answer again, since a client's parallel requests refresh together;
 * any other reuse revokes the whole grant). Answers are never cached.
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readFormBody } from '../http/body.js';
import type { OAuthClient } from './clients.js';
import { FORM_LIMIT_BYTES, type AuthServerContext } from './context.js';
import { grantOnly, scopesOf, viaOf, type CodeClaims, type GrantClaims, type RefreshClaims } from './grants.js';
import { OAuthError, writeJson } from './respond.js';

const VERIFIER = /^[A-Za-z0-9._~-]{43,128}$/;
/** How long a redeemed code's mark is kept (longer than the code lives). */
const CODE_MARK_MS = 5 * 60_000;

type TokenResponse = Record<string, string | number>;

/** RFC 6749 allows each parameter once. */
function single(form: URLSearchParams): void {
  for (const name of new Set(form.keys())) if (form.getAll(name).length > 1) throw new OAuthError('invalid_request', `${name} may be given once`);
}

export class TokenEndpoint {
  constructor(
    private readonly ctx: AuthServerContext,
    private readonly grantTtlMs: number,
  ) {}

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readFormBody(req, FORM_LIMIT_BYTES);
    if (!form) return;
    single(form);
    const client = await this.ctx.clients.authenticate(req, form);
    const type = form.get('grant_type');
    let answer: TokenResponse;
    if (type === 'authorization_code') answer = await this.redeem(client, form);
    else if (type === 'refresh_token') answer = await this.refresh(client, form);
    else throw new OAuthError('unsupported_grant_type', 'grant_type must be authorization_code or refresh_token');
    writeJson(res, 200, answer);
  }

  private async redeem(client: OAuthClient, form: URLSearchParams): Promise<TokenResponse> {
    const opened = this.ctx.seals.openCode(form.get('code') ?? '');
    if (!opened.ok)
      throw new OAuthError('invalid_grant', opened.reason === 'expired' ? 'the authorization code expired' : 'the authorization code is not valid');
    const code: CodeClaims = opened.value;
    if (code.c !== client.id) throw new OAuthError('invalid_grant', 'the authorization code was issued to another client');
    if (code.u !== undefined && form.get('redirect_uri') !== code.u)
      throw new OAuthError('invalid_grant', 'redirect_uri differs from the authorization request');
    const verifier = form.get('code_verifier') ?? '';
    if (!VERIFIER.test(verifier)) throw new OAuthError('invalid_grant', 'code_verifier must be 43-128 characters of A-Z a-z 0-9 - . _ ~');
    if (createHash('sha256').update(verifier).digest('base64url') !== code.ch)
      throw new OAuthError('invalid_grant', 'code_verifier does not match the code_challenge');
    this.checkResource(form, code);
    const first = await this.store(() => this.ctx.store.claimOnce(`code:${code.g}`, CODE_MARK_MS));
    if (!first) {
      // A code used twice was stolen or replayed: whatever the first use got is revoked.
      await this.store(() => this.ctx.store.revoke(code.g));
      this.ctx.audit.record('oauth_revoke', { grant: code.g, reason: 'authorization code used twice' });
      throw new OAuthError('invalid_grant', 'the authorization code was already used; the tokens issued for it are revoked');
    }
    const now = this.ctx.now();
    await this.store(() =>
      this.ctx.store.create(
        {
          id: code.g,
          clientId: code.c,
          clientName: code.cn,
          via: viaOf(code.p),
          role: code.p.role,
          resource: code.r,
          scope: code.s,
          createdAt: now,
          lastUsedAt: now,
        },
        this.grantTtlMs,
      ),
    );
    this.ctx.audit.record('oauth_grant', { grant: code.g, client: code.cn, via: viaOf(code.p), role: code.p.role, scope: code.s });
    return this.answer(grantOnly(code), code.s, code.o ? this.ctx.seals.refresh(grantOnly(code), 0) : undefined);
  }

  private async refresh(client: OAuthClient, form: URLSearchParams): Promise<TokenResponse> {
    const opened = this.ctx.seals.openRefresh(form.get('refresh_token') ?? '');
    if (!opened.ok) throw new OAuthError('invalid_grant', opened.reason === 'expired' ? 'the refresh token expired' : 'the refresh token is not valid');
    const token: RefreshClaims = opened.value;
    if (token.c !== client.id) throw new OAuthError('invalid_grant', 'the refresh token was issued to another client');
    this.checkResource(form, token);
    const asked = form.get('scope');
    const scope = asked === null ? token.s : asked;
    if (!scopesOf(scope).every((s) => scopesOf(token.s).includes(s))) throw new OAuthError('invalid_scope', 'a refresh cannot widen the scope');
    const claims = grantOnly(token);
    const answer = this.answer(claims, scope, this.ctx.seals.refresh(claims, token.n + 1));
    const at = this.ctx.now();
    const replay = this.ctx.sealer.seal('replay', answer, this.ctx.refreshGraceMs + 60_000);
    const outcome = await this.store(() =>
      this.ctx.store.rotate(token.g, {
        clientId: token.c,
        generation: token.n,
        at,
        graceMs: this.ctx.refreshGraceMs,
        response: replay,
        ttlMs: this.grantTtlMs,
      }),
    );
    if (outcome.kind === 'rotated') return answer;
    if (outcome.kind === 'replay') {
      const again = this.ctx.sealer.open<TokenResponse>('replay', outcome.response);
      if (again.ok) return again.value;
      throw new OAuthError('invalid_grant', 'the refresh token was already used');
    }
    if (outcome.kind === 'reuse') {
      this.ctx.audit.record('oauth_revoke', { grant: token.g, reason: 'refresh token reused' });
      throw new OAuthError('invalid_grant', 'the refresh token was already used; the grant is revoked');
    }
    throw new OAuthError('invalid_grant', 'the grant was revoked or has expired');
  }

  /** `resource`, when given again, must be the one the grant was issued for. */
  private checkResource(form: URLSearchParams, claims: GrantClaims): void {
    const named = form.get('resource');
    if (named === null) return;
    const asked = this.ctx.resource.parse(named);
    const bound = this.ctx.resource.parse(claims.r);
    if (!asked || !bound || asked.key !== bound.key || asked.endpoint !== bound.endpoint) {
      throw new OAuthError('invalid_target', 'resource differs from the one the authorization was for');
    }
  }

  private answer(claims: GrantClaims, scope: string, refreshToken: string | undefined): TokenResponse {
    return {
      access_token: this.ctx.seals.access({ ...claims, s: scope }),
      token_type: 'Bearer',
      expires_in: Math.floor(this.ctx.seals.accessTtlMs / 1000),
      ...(refreshToken === undefined ? {} : { refresh_token: refreshToken }),
      scope,
    };
  }

  /** A store call; its failure is a 503 the client may retry, never a refusal of the grant. */
  private async store<T>(call: () => Promise<T>): Promise<T> {
    try {
      return await call();
    } catch {
      throw new OAuthError('temporarily_unavailable', 'the grant store did not answer; try again', 503, { 'Retry-After': '1' });
    }
  }
}
