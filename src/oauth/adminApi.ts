/**
 * The admin's view of OAuth grants (admin credential only: the pipeline's admin check
 * refuses client credentials on /admin/*):
 * - `GET /admin/oauth/grants`: every live grant with its client, the credential it came
 *   from, its role, resource, scope, when it was made and last used. Never a token or an
 *   env value.
 * - `POST /admin/oauth/revoke` with `{"grant": "<id>"}` or `{"client": "<client_id>"}`:
 *   revokes that grant, or every grant of that client; answers `{"revoked": [ids]}`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { WardenError } from '../errors.js';
import { readJsonBody } from '../http/body.js';
import { writeError } from '../http/respond.js';
import type { AuditRecorder } from '../audit/recorder.js';
import type { GrantRecord, GrantStore } from './store.js';

function shown(record: GrantRecord) {
  return {
    grant: record.id,
    client: { id: record.clientId, name: record.clientName },
    via: record.via,
    role: record.role,
    resource: record.resource,
    scope: record.scope,
    createdAt: new Date(record.createdAt).toISOString(),
    lastUsedAt: new Date(record.lastUsedAt).toISOString(),
  };
}

export class OAuthAdminApi {
  constructor(
    private readonly store: GrantStore,
    private readonly audit: AuditRecorder,
  ) {}

  /** Answers the two routes; false for any other path (the caller answers 404). */
  async handle(req: IncomingMessage, res: ServerResponse, path: string): Promise<boolean> {
    if (path === '/admin/oauth/grants') {
      if (req.method !== 'GET' && req.method !== 'HEAD') return (this.methodNotAllowed(res, 'GET'), true);
      const grants = (await this.store.list()).sort((a, b) => a.createdAt - b.createdAt).map(shown);
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' }).end(JSON.stringify({ grants }));
      return true;
    }
    if (path === '/admin/oauth/revoke') {
      if (req.method !== 'POST') return (this.methodNotAllowed(res, 'POST'), true);
      const body = await readJsonBody(req, { limitBytes: 16 * 1024, strict: false });
      if (!body) return true;
      const { grant, client } = body.value as { grant?: unknown; client?: unknown };
      let revoked: string[];
      if (typeof grant === 'string' && client === undefined) revoked = (await this.store.revoke(grant)) ? [grant] : [];
      else if (typeof client === 'string' && grant === undefined) revoked = await this.store.revokeClient(client);
      else throw new WardenError('bad_request', 'send {"grant": "<grant id>"} or {"client": "<client_id>"}');
      for (const id of revoked) this.audit.record('oauth_revoke', { grant: id, reason: 'revoked by an administrator' });
      res.writeHead(200, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' }).end(JSON.stringify({ revoked }));
      return true;
    }
    return false;
  }

  private methodNotAllowed(res: ServerResponse, allow: string): void {
    writeError(res, new WardenError('method_not_allowed', `use ${allow}`, { headers: { Allow: allow } }));
  }
}
