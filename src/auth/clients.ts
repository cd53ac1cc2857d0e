/**
 * The clients file: tokens mapped to a client id and a role. Tokens may be stored in
 * clear or as SHA-256 hex digests. A presented token is hashed once and compared with
 * every known digest in constant time (no early exit), the shared secret included.
 */
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { digest, type Principal, type TokenVerifier } from './bearer.js';
import { timingSafeEqual } from 'node:crypto';

const clientSchema = z
  .strictObject({
    id: z.string().regex(/^[A-Za-z0-9_.@-]{1,64}$/, 'must be 1-64 letters, digits or _.@-'),
    role: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1-64 letters, digits or _.-'),
    token: z.string().min(16, 'must be at least 16 characters').optional(),
    tokenSha256: z.string().regex(/^[0-9a-f]{64}$/i, 'must be 64 hex characters').optional(),
  })
  .refine((c) => (c.token === undefined) !== (c.tokenSha256 === undefined), 'give exactly one of token or tokenSha256');

export const clientsFileSchema = z.strictObject({
  /** Role of callers that present the shared WARDEN_SECRET. */
  sharedSecretRole: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  clients: z.array(clientSchema),
});

export class ClientsFileError extends Error {
  override name = 'ClientsFileError';
}

interface KnownToken {
  readonly digest: Buffer;
  readonly principal: Principal;
}

export interface ClientsConfig {
  readonly sharedSecretRole: string | undefined;
  readonly tokens: readonly KnownToken[];
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
    const where = issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('').replace(/^\./, '');
    throw new ClientsFileError(`${path}: ${where || '(top level)'}: ${issue.message}`);
  }
  const ids = new Set<string>();
  const tokens = result.data.clients.map((c, i) => {
    if (ids.has(c.id)) throw new ClientsFileError(`${path}: clients[${i}].id: duplicate client id ${JSON.stringify(c.id)}`);
    ids.add(c.id);
    return {
      digest: c.token !== undefined ? digest(c.token) : Buffer.from(c.tokenSha256!, 'hex'),
      principal: Object.freeze({ clientId: c.id, role: c.role }),
    };
  });
  return { sharedSecretRole: result.data.sharedSecretRole, tokens };
}

/** Verifies a token against the shared secret and every client token, in constant time. */
export function multiTokenVerifier(sharedSecret: string, sharedRole: string, clients: readonly KnownToken[]): TokenVerifier {
  const known: KnownToken[] = [{ digest: digest(sharedSecret), principal: Object.freeze({ clientId: 'shared-secret', role: sharedRole }) }, ...clients];
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
