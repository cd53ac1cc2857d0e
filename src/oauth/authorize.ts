/**
 * The authorization endpoint. GET /authorize validates the request (src/oauth/authorizeRequest.ts)
 * and shows the consent page. POST /authorize is that page's form: the person proves who they
 * are with a credential the gateway already knows (the shared secret or a client token; never
 * an admin token; failures count toward the failed-login throttle), then, when the entry
 * takes env values, fills them in on a second page. The approval becomes a single-use code,
 * sent back to the client with `state` and `iss`.
 *
 * Nothing is stored: the pending request travels sealed in the form, with a sealed CSRF token
 * bound to it; nothing typed is ever logged or written to the audit trail.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/bearer.js';
import { validateEnvHeaders } from '../commands/env.js';
import type { CommandSpec } from '../commands/types.js';
import { EnvRejectedError } from '../errors.js';
import { readFormBody } from '../http/body.js';
import { RedirectableError, validateAuthorizationRequest, type Pending } from './authorizeRequest.js';
import { CONSENT_TTL_MS, FORM_LIMIT_BYTES, GRANT_ENV_LIMIT_BYTES, type AuthServerContext } from './context.js';
import { viaOf, type ConsentedBy } from './grants.js';
import { consentPage, envPage, errorPage } from './pages.js';
import { redirectTarget } from './redirects.js';
import { OAuthError, redirect, withParams, writePage } from './respond.js';
import { randomId } from './seal.js';

const EXPIRED_FORM = 'This page expired or was changed. Go back to the application and connect again.';

/** The exact names of an entry's allowedEnv (prefix patterns cannot be asked for by name). */
export function askedEnvNames(spec: CommandSpec): string[] {
  return (spec.allowedEnv ?? []).filter((name) => !name.endsWith('*'));
}

export class AuthorizeEndpoint {
  constructor(private readonly ctx: AuthServerContext) {}

  async show(req: IncomingMessage, res: ServerResponse, query: URLSearchParams): Promise<void> {
    try {
      const { pending } = await validateAuthorizationRequest(query, this.ctx.clients, this.ctx.resource);
      writePage(res, 200, this.consent(pending));
    } catch (error) {
      this.fail(res, error, 302);
    }
  }

  async submit(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const form = await readFormBody(req, FORM_LIMIT_BYTES);
    if (!form) return;
    const pending = this.openForm(form);
    if (!pending) return writePage(res, 400, errorPage('This page expired', EXPIRED_FORM));
    if (form.get('decision') !== 'approve') return this.back(res, pending, { error: 'access_denied', error_description: 'the person declined' });
    const target = this.ctx.resource.parse(pending.r);
    if (!target) return writePage(res, 400, errorPage('This page expired', EXPIRED_FORM));
    if (pending.p === undefined) return this.login(req, res, pending, form, target.key);
    const spec = this.ctx.registry.get(target.key);
    if (!spec) return this.back(res, pending, { error: 'invalid_target', error_description: 'no MCP server has this key' });
    return this.withEnv(res, pending, pending.p, form, spec);
  }

  /** Step 1: the credential. */
  private async login(req: IncomingMessage, res: ServerResponse, pending: Pending, form: URLSearchParams, key: string): Promise<void> {
    const address = this.ctx.addressOf(req);
    try {
      await this.ctx.throttle?.check(address);
    } catch {
      return writePage(res, 429, this.consent(pending, 'Too many failed attempts from your address. Wait a while, then try again.'), { 'Retry-After': '60' });
    }
    const credential = form.get('credential') ?? '';
    if (credential !== '' && this.ctx.verifyAdmin?.(credential)) {
      return writePage(
        res,
        403,
        this.consent(pending, 'An administrator token cannot approve access to an MCP server. Enter the shared secret or your client token.'),
      );
    }
    const principal = credential === '' ? undefined : this.ctx.verifyCredential(credential);
    if (!principal) {
      this.ctx.audit.record('auth_failure', { address, reason: 'invalid credential at OAuth consent', path: '/authorize' });
      await this.ctx.throttle?.fail(address).catch(() => undefined);
      return writePage(res, 401, this.consent(pending, 'That credential is not valid.'));
    }
    const spec = this.ctx.registry.get(key);
    if (!spec) return this.back(res, pending, { error: 'invalid_target', error_description: 'no MCP server has this key' });
    const by = consentedBy(principal);
    if (askedEnvNames(spec).length === 0) return this.approve(res, pending, by, undefined, key);
    const next: Pending = { ...pending, p: by };
    writePage(res, 200, this.envForm(next, spec));
  }

  /** Step 2: the entry's env values, through the same validation as ENV_* headers. */
  private withEnv(res: ServerResponse, pending: Pending, by: ConsentedBy, form: URLSearchParams, spec: CommandSpec): void {
    const entries = askedEnvNames(spec)
      .map((name) => ({ name, value: form.get(`env_${name}`) ?? '' }))
      .filter((entry) => entry.value !== '');
    let accepted: Record<string, string>;
    try {
      accepted = validateEnvHeaders(entries, spec, { mode: this.ctx.envMode });
    } catch (error) {
      if (!(error instanceof EnvRejectedError)) throw error;
      return writePage(res, 400, this.envForm(pending, spec, error.message));
    }
    const size = Object.entries(accepted).reduce((n, [name, value]) => n + Buffer.byteLength(name) + Buffer.byteLength(value), 0);
    if (size > GRANT_ENV_LIMIT_BYTES)
      return writePage(res, 400, this.envForm(pending, spec, `The values are too long together (at most ${GRANT_ENV_LIMIT_BYTES} bytes).`));
    this.approve(res, pending, by, Object.keys(accepted).length > 0 ? accepted : undefined, spec.key);
  }

  /** The code, back to the client. */
  private approve(res: ServerResponse, pending: Pending, by: ConsentedBy, env: Record<string, string> | undefined, key: string): void {
    const grant = randomId('g_');
    const code = this.ctx.seals.code({
      g: grant,
      c: pending.c,
      r: pending.r,
      s: pending.s,
      p: by,
      ...(env ? { e: env } : {}),
      o: pending.o,
      ...(pending.u === undefined ? {} : { u: pending.u }),
      ch: pending.ch,
      cn: pending.cn,
    });
    this.ctx.audit.record('oauth_consent', {
      grant,
      client: pending.cn,
      clientId: pending.c,
      via: viaOf(by),
      role: by.role,
      command: key,
      variables: env ? Object.keys(env) : [],
    });
    this.back(res, pending, { code });
  }

  /** A redirect to the client with `params`, `state` and `iss`. */
  private back(res: ServerResponse, pending: Pending, params: Record<string, string>, status: 302 | 303 = 303): void {
    redirect(res, withParams(pending.ru, { ...params, state: pending.st, iss: this.ctx.issuer }), status);
  }

  private fail(res: ServerResponse, error: unknown, status: 302 | 303): void {
    if (error instanceof RedirectableError) {
      redirect(
        res,
        withParams(error.redirectUri, { error: error.error, error_description: error.description, state: error.state, iss: this.ctx.issuer }),
        status,
      );
    } else if (error instanceof OAuthError) {
      writePage(res, 400, errorPage('This authorization request cannot go on', error.description));
    } else {
      throw error;
    }
  }

  private openForm(form: URLSearchParams): Pending | undefined {
    const opened = this.ctx.sealer.open<Pending>('consent', form.get('request') ?? '');
    const csrf = this.ctx.sealer.open<{ k: string }>('csrf', form.get('csrf') ?? '');
    if (!opened.ok || !csrf.ok || csrf.value.k !== opened.value.k) return undefined;
    return opened.value;
  }

  private hidden(pending: Pending): Record<string, string> {
    return {
      request: this.ctx.sealer.seal('consent', pending, CONSENT_TTL_MS),
      csrf: this.ctx.sealer.seal('csrf', { k: pending.k }, CONSENT_TTL_MS),
    };
  }

  private consent(pending: Pending, error?: string): string {
    const target = this.ctx.resource.parse(pending.r);
    return consentPage({
      clientName: pending.cn,
      clientId: pending.c,
      ...(pending.c.startsWith('https://') ? { clientIdHost: new URL(pending.c).host } : {}),
      redirectTarget: redirectTarget(pending.ru),
      localhostOnly: pending.lo,
      key: target?.key ?? pending.r,
      resource: pending.r,
      scope: pending.s,
      hidden: this.hidden(pending),
      ...(error === undefined ? {} : { error }),
    });
  }

  private envForm(pending: Pending, spec: CommandSpec, error?: string): string {
    return envPage({
      clientName: pending.cn,
      key: spec.key,
      names: askedEnvNames(spec),
      hidden: this.hidden(pending),
      ...(error === undefined ? {} : { error }),
    });
  }
}

function consentedBy(principal: Principal): ConsentedBy {
  return { kind: principal.kind === 'shared-secret' ? 'shared-secret' : 'client', id: principal.clientId, role: principal.role };
}
