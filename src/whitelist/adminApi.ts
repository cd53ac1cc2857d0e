/**
 * The whitelist's admin API, under `/admin/commands` (the pipeline's admin route class has
 * already authenticated the admin credential and refused every other one):
 * - `GET /admin/commands`: every entry, in order, with its URL paths;
 * - `GET /admin/commands/<encoded key>`: one entry;
 * - `PUT /admin/commands/<encoded key>`: adds the entry (the body) or replaces it;
 *   `If-None-Match: *` refuses an existing key (409);
 * - `DELETE /admin/commands/<encoded key>`: removes it.
 * An edit is validated as the loader validates the whole whitelist and applied at once.
 * Fixed `env` values are never shown. Adding a command runs code on the host: no client
 * credential ever reaches this.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { RequestHandler } from 'express';
import { decodeCommandSegment } from '../commands/registry.js';
import { CommandsFileError } from '../config/commands.js';
import { WardenError } from '../errors.js';
import { readJsonBody } from '../http/body.js';
import type { Logger } from '../logging/logger.js';
import { shownEntry } from './document.js';
import { EditError, missingEntry, putEntry, removeEntry } from './edit.js';
import type { LiveWhitelist } from './live.js';
import { endpointPaths } from './urls.js';

/** Largest entry accepted in a PUT. */
const ENTRY_LIMIT_BYTES = 256 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'Content-Type': 'application/json; charset=utf-8', 'Cache-Control': 'no-store' }).end(JSON.stringify(body));
}

function methodNotAllowed(method: string | undefined, allow: string): WardenError {
  return new WardenError('method_not_allowed', `${method} is not supported here; use ${allow}`, { headers: { Allow: allow } });
}

/** An edit refusal as the HTTP error that says it. */
function editRefusal(error: unknown): unknown {
  if (error instanceof EditError) {
    const code = error.problem === 'exists' ? 'conflict' : error.problem === 'missing' ? 'unknown_command' : 'bad_request';
    return new WardenError(code, error.message, error.key === undefined ? {} : { data: { entry: error.key } });
  }
  // The stored whitelist itself does not read (a broken hand edit): say so, change nothing.
  if (error instanceof CommandsFileError) return new WardenError('conflict', `the stored whitelist cannot be edited until it is fixed: ${error.message}`);
  return error;
}

export function commandsApi(live: LiveWhitelist, logger: Logger): RequestHandler {
  const describe = (key: string, entry: unknown) => ({ key, paths: endpointPaths(key), entry: shownEntry(entry) });

  const handle = async (req: IncomingMessage & { principal?: { clientId?: string } }, res: ServerResponse, path: string): Promise<boolean> => {
    const source = live.source;
    if (path === '/' || path === '') {
      if (req.method !== 'GET' && req.method !== 'HEAD') throw methodNotAllowed(req.method, 'GET');
      const doc = await source.read();
      send(res, 200, { source: source.kind, commands: [...doc.entries].map(([key, entry]) => describe(key, entry)) });
      return true;
    }
    const segment = path.slice(1);
    if (segment.includes('/')) return false; // a `/` inside a key is sent encoded (%2F)
    const key = decodeCommandSegment(segment);
    if (key === undefined) throw new WardenError('bad_request', 'the key in the path is not valid percent-encoding (send encodeURIComponent(key))');
    const by = req.principal?.clientId ?? 'admin';
    switch (req.method) {
      case 'GET':
      case 'HEAD': {
        const doc = await source.read();
        if (!doc.entries.has(key)) throw editRefusal(missingEntry(doc, key, source.name));
        send(res, 200, describe(key, doc.entries.get(key)));
        return true;
      }
      case 'PUT': {
        const body = await readJsonBody(req, { limitBytes: ENTRY_LIMIT_BYTES, strict: false });
        if (!body) return true; // the client left
        if (Array.isArray(body.value))
          throw new WardenError('bad_request', 'the body must be the entry: a JSON object such as {"command": "npx", "args": ["-y", "pkg"]}');
        const replace = req.headers['if-none-match'] !== '*';
        const context = { file: source.file, source: source.name, replace };
        const result = await live
          .edit((doc) => putEntry(doc, key, body.value, context), by)
          .catch((error: unknown) => {
            throw editRefusal(error);
          });
        send(res, result.replaced ? 200 : 201, { ...describe(key, body.value), replaced: result.replaced });
        return true;
      }
      case 'DELETE': {
        const context = { file: source.file, source: source.name };
        const result = await live
          .edit((doc) => removeEntry(doc, key, context), by)
          .catch((error: unknown) => {
            throw editRefusal(error);
          });
        send(res, 200, { key, removed: true, liveSessions: result.change?.sessionsOfRemoved ?? 0 });
        return true;
      }
      default:
        throw methodNotAllowed(req.method, 'GET, PUT, DELETE');
    }
  };

  return (req, res, next) => {
    const path = (req.url ?? '/').split('?')[0]!;
    handle(req, res, path).then(
      (answered) => (answered ? undefined : next()),
      (error: unknown) => {
        if (!(error instanceof WardenError)) {
          logger.error('whitelist edit failed', { source: live.source.name, error: (error as Error).message });
          next(new WardenError('internal', `the whitelist could not be stored: ${(error as Error).message}`, { retryAfter: 1 }));
          return;
        }
        next(error);
      },
    );
  };
}
