/**
 * Finding an external identity provider's keys at start: its authorization server metadata
 * (RFC 8414) or, failing that, its OpenID Connect discovery document, tried in the order the
 * MCP specification gives (for an issuer with a path, the path-inserted RFC 8414 form, then
 * the path-inserted and the path-appended OIDC forms). The first document that answers must
 * name exactly the configured issuer (RFC 8414 §3.3) and carry its `jwks_uri`. Each fetch has
 * a deadline and a size cap and follows no redirect.
 */
import { idpUrlProblem } from '../config/oauthSettings.js';

export interface DiscoveryOptions {
  /** Deadline of each document's fetch, ms. @default 5000 */
  readonly timeoutMs?: number;
  /** Accept http on a loopback host (tests). @default false */
  readonly allowLoopbackHttp?: boolean;
  /** @default globalThis.fetch */
  readonly fetch?: typeof fetch;
}

/** What the gateway needs of the provider's metadata. */
export interface ProviderMetadata {
  readonly issuer: string;
  readonly jwksUri: string;
  /** The document it came from. */
  readonly source: string;
}

/** The provider could not be discovered: the message says where it looked and what each said. */
export class DiscoveryError extends Error {
  override name = 'DiscoveryError';
}

const MAX_BYTES = 256 * 1024;

/** The metadata URLs of `issuer`, in the order they are tried. */
export function discoveryUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  if (path === '') return [`${url.origin}/.well-known/oauth-authorization-server`, `${url.origin}/.well-known/openid-configuration`];
  return [
    `${url.origin}/.well-known/oauth-authorization-server${path}`,
    `${url.origin}/.well-known/openid-configuration${path}`,
    `${url.origin}${path}/.well-known/openid-configuration`,
  ];
}

/** The body of `url` as JSON, or why not (never anything the body said). */
async function fetchJson(url: string, options: DiscoveryOptions): Promise<unknown> {
  const timeoutMs = options.timeoutMs ?? 5_000;
  let res: Response;
  try {
    res = await (options.fetch ?? fetch)(url, { redirect: 'manual', headers: { Accept: 'application/json' }, signal: AbortSignal.timeout(timeoutMs) });
  } catch (error) {
    const name = (error as Error).name;
    const cause = (error as { cause?: { code?: string } }).cause?.code;
    throw new DiscoveryError(
      name === 'TimeoutError' || name === 'AbortError' ? `no answer within ${timeoutMs} ms` : `could not connect (${cause ?? 'connection failed'})`,
    );
  }
  try {
    if (res.status !== 200)
      throw new DiscoveryError(
        res.status >= 300 && res.status < 400 ? `answered with a redirect (HTTP ${res.status}), which is not followed` : `answered HTTP ${res.status}`,
      );
    if (Number(res.headers.get('content-length') ?? '0') > MAX_BYTES) throw new DiscoveryError(`is larger than ${MAX_BYTES} bytes`);
    const reader = res.body?.getReader();
    const chunks: Uint8Array[] = [];
    let size = 0;
    for (;;) {
      const chunk = reader ? await reader.read() : { done: true as const, value: undefined };
      if (chunk.done) break;
      size += chunk.value.length;
      if (size > MAX_BYTES) throw new DiscoveryError(`is larger than ${MAX_BYTES} bytes`);
      chunks.push(chunk.value);
    }
    try {
      return JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      throw new DiscoveryError('is not JSON');
    }
  } catch (error) {
    await res.body?.cancel().catch(() => undefined);
    if (error instanceof DiscoveryError) throw error;
    throw new DiscoveryError(`could not be read (${(error as Error).name})`);
  }
}

/** The provider's issuer and JWKS URL from the first metadata document that answers. */
export async function discoverProvider(issuer: string, options: DiscoveryOptions = {}): Promise<ProviderMetadata> {
  const failures: string[] = [];
  for (const url of discoveryUrls(issuer)) {
    let document: unknown;
    try {
      document = await fetchJson(url, options);
    } catch (error) {
      failures.push(`${url} ${(error as Error).message}`);
      continue;
    }
    const fields = (document ?? {}) as { issuer?: unknown; jwks_uri?: unknown };
    // A document that answers but names another issuer is a misconfiguration, not a miss.
    if (fields.issuer !== issuer) {
      throw new DiscoveryError(
        `${url} names the issuer ${JSON.stringify(String(fields.issuer).slice(0, 200))}, not ${JSON.stringify(issuer)}: ` +
          "--oauth-issuer must be exactly the issuer of the provider's tokens (mind the trailing slash)",
      );
    }
    if (typeof fields.jwks_uri !== 'string' || !URL.canParse(fields.jwks_uri)) throw new DiscoveryError(`${url} has no jwks_uri; set --oauth-jwks-url`);
    const problem = idpUrlProblem(fields.jwks_uri, options.allowLoopbackHttp ?? false);
    if (problem !== undefined) throw new DiscoveryError(`the jwks_uri of ${url} ${problem}`);
    return { issuer, jwksUri: fields.jwks_uri, source: url };
  }
  throw new DiscoveryError(
    `the identity provider's metadata for ${issuer} could not be fetched: ${failures.join('; ')}. Check --oauth-issuer, or set --oauth-jwks-url to skip discovery`,
  );
}
