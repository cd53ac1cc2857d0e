/**
 * The clients file: tokens mapped to a client id and a role. Tokens may be stored in
 * clear or as SHA-256 hex digests. A presented token is hashed once and compared with
 * every known digest in constant time (no early exit), the shared secret included.
 *
 * Ids the gateway gives its own principals are reserved: `shared-secret` (callers that
 * present WARDEN_SECRET) and any id beginning with `warden:`, `oauth:` or `admin:`
 * (compared without regard to case). A clients file that uses one is refused at load.
 *
 * An entry marked `"admin": true` holds the admin credential instead of a client's: it
 * opens administration (/status details, /metrics) and nothing else, never an MCP endpoint.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { SHARED_SECRET_ID, digest, sharedSecretPrincipal, type Principal, type TokenVerifier } from './bearer.js';
import { timingSafeEqual } from 'node:crypto';

/** Client ids that name the gateway's own principals (compared in lower case). */
export const RESERVED_CLIENT_IDS: readonly string[] = [SHARED_SECRET_ID];
/** Prefixes of ids kept for principals the gateway makes itself (compared in lower case). */
export const RESERVED_CLIENT_ID_PREFIXES: readonly string[] = ['warden:', 'oauth:', 'admin:'];

/** Ids that are safe to quote in a message: the id syntax, plus the reserved prefixes' colon. */
const QUOTABLE_ID = /^[A-Za-z0-9_.@:-]{1,64}$/;

/** Why `id` is reserved, or undefined. Quotes the id only when it is short and plain. */
export function reservedIdProblem(id: string): string | undefined {
  const lower = id.toLowerCase();
  const exact = RESERVED_CLIENT_IDS.find((reserved) => lower === reserved);
  if (exact !== undefined) return `${JSON.stringify(id)} is reserved for the gateway's own principal; choose another id`;
  const prefix = RESERVED_CLIENT_ID_PREFIXES.find((reserved) => lower.startsWith(reserved));
  if (prefix === undefined) return undefined;
  const quoted = QUOTABLE_ID.test(id) ? `${JSON.stringify(id)}: ` : '';
  return `${quoted}ids beginning with ${JSON.stringify(prefix)} are reserved for the gateway's own principals; choose another id`;
}

const clientSchema = z
  .strictObject({
    id: z
      .string()
      .superRefine((id, ctx) => {
        const problem = reservedIdProblem(id);
        if (problem !== undefined) ctx.addIssue({ code: 'custom', message: problem });
      })
      .regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must be 1-64 letters, digits or _.@-'),
    role: z
      .string()
      .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits or _.-')
      .optional(),
    /** An administrator, not a client: admin routes only. */
    admin: z.boolean().optional(),
    token: z.string().min(16, 'must be at least 16 characters').optional(),
    tokenSha256: z
      .string()
      .regex(/^[0-9a-f]{64}$/i, 'must be 64 hex characters')
      .optional(),
  })
  .refine((c) => (c.token === undefined) !== (c.tokenSha256 === undefined), 'give exactly one of token or tokenSha256')
  .refine((c) => c.admin === true || c.role !== undefined, { message: 'a client needs a "role" (or "admin": true for an administrator)', path: ['role'] });

export const clientsFileSchema = z.strictObject({
  /** Role of callers that present the shared WARDEN_SECRET. */
  sharedSecretRole: z
    .string()
    .regex(/^[A-Za-z0-9_.-]{1,64}$/)
    .optional(),
  clients: z.array(clientSchema),
});

export class ClientsFileError extends Error {
  override name = 'ClientsFileError';
}

export interface KnownToken {
  readonly digest: Buffer;
  readonly principal: Principal;
}

export interface ClientsConfig {
  readonly sharedSecretRole: string | undefined;
  /** Client tokens (MCP endpoints). */
  readonly tokens: readonly KnownToken[];
  /** Administrator tokens (admin routes only). */
  readonly adminTokens: readonly KnownToken[];
}

export function loadClientsFile(path: string): ClientsConfig {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new ClientsFileError(`${path}: cannot read file: ${(error as NodeJS.ErrnoException).code ?? 'error'}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    // The parser's message quotes the text around the error, which may be a token.
    const position = /position (\d+)/.exec((error as Error).message)?.[1];
    throw new ClientsFileError(`${path}: invalid JSON${position === undefined ? '' : ` near position ${position}`}`);
  }
  const result = clientsFileSchema.safeParse(json);
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const where = issue.path
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    throw new ClientsFileError(`${path}: ${where || '(top level)'}: ${issue.message}`);
  }
  const ids = new Set<string>();
  const entries = result.data.clients.map((c, i) => {
    if (ids.has(c.id)) throw new ClientsFileError(`${path}: clients[${i}].id: duplicate client id ${JSON.stringify(c.id)}`);
    ids.add(c.id);
    return {
      digest: c.token !== undefined ? digest(c.token) : Buffer.from(c.tokenSha256!, 'hex'),
      principal: Object.freeze<Principal>({ kind: c.admin === true ? 'admin' : 'client', clientId: c.id, role: c.role ?? 'admin' }),
    };
  });
  return {
    sharedSecretRole: result.data.sharedSecretRole,
    tokens: entries.filter((e) => e.principal.kind === 'client'),
    adminTokens: entries.filter((e) => e.principal.kind === 'admin'),
  };
}

/** Verifies a token against the shared secret and every client token, in constant time. */
export function multiTokenVerifier(sharedSecret: string, sharedRole: string, clients: readonly KnownToken[]): TokenVerifier {
  return knownTokenVerifier([{ digest: digest(sharedSecret), principal: sharedSecretPrincipal(sharedRole) }, ...clients]);
}

/** Verifies a token against `known` in constant time; undefined when none matches. */
export function knownTokenVerifier(known: readonly KnownToken[]): TokenVerifier {
  return (token) => {
    const presented = digest(token);
    let match: Principal | undefined;
    for (const entry of known) {
      // Every entry is compared, so the time taken does not reveal which one matched.
      if (timingSafeEqual(presented, entry.digest) && match === undefined) match = entry.principal;
    }
    return match;
  };
}
