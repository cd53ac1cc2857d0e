/**
 * Fetching a client metadata document without becoming a tool for reaching inside the
 * network (server-side request forgery): https only; the host is resolved here and EVERY
 * address it resolves to must be public (src/oauth/addresses.ts); the connection goes to the
 * address that was checked (no second lookup, so DNS rebinding cannot swap it); redirects
 * are refused, not followed; the whole fetch has a deadline and the body a size cap, read as
 * it streams; the answer must be JSON. No cookies or credentials are ever sent.
 */
import { lookup as dnsLookup } from 'node:dns/promises';
import { request } from 'node:https';
import type { LookupFunction } from 'node:net';
import { isIP } from 'node:net';
import { addressProblem } from './addresses.js';

export interface ResolvedAddress {
  readonly address: string;
  readonly family: 4 | 6;
}

export interface MetadataFetchOptions {
  /** Deadline for resolving, connecting and reading, ms. @default 5000 */
  readonly timeoutMs?: number;
  /** Largest body, bytes. @default 5120 */
  readonly maxBytes?: number;
  /** Accept loopback addresses (tests only: --oauth-allow-loopback-metadata). @default false */
  readonly allowLoopback?: boolean;
  /** Extra certificate authorities to trust (tests serve documents with their own). */
  readonly ca?: string | Buffer;
  /** Resolves a host name. @default dns.lookup, every address */
  readonly resolve?: (host: string) => Promise<readonly ResolvedAddress[]>;
}

/** A fetched document and how long it may be cached, seconds (undefined: no directive). */
export interface FetchedDocument {
  readonly text: string;
  readonly maxAgeSeconds: number | undefined;
}

/** The document could not be fetched; the message says why (never anything it contained). */
export class MetadataFetchError extends Error {
  override name = 'MetadataFetchError';
}

const JSON_TYPE = /^application\/(?:[\w.+-]+\+)?json\s*(?:;|$)/i;

async function defaultResolve(host: string): Promise<readonly ResolvedAddress[]> {
  const found = await dnsLookup(host, { all: true, verbatim: true });
  return found.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
}

/** The max-age of a Cache-Control header (`no-store`/`no-cache`: 0). */
export function maxAgeOf(header: string | undefined): number | undefined {
  if (header === undefined) return undefined;
  if (/(?:^|,)\s*(?:no-store|no-cache)\s*(?:,|$)/i.test(header)) return 0;
  const match = /(?:^|,)\s*max-age\s*=\s*"?(\d+)"?/i.exec(header);
  return match ? Number(match[1]) : undefined;
}

export async function fetchMetadataDocument(url: URL, options: MetadataFetchOptions = {}): Promise<FetchedDocument> {
  if (url.protocol !== 'https:') throw new MetadataFetchError('the client_id URL must be https');
  const timeoutMs = options.timeoutMs ?? 5_000;
  const maxBytes = options.maxBytes ?? 5_120;
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  try {
    const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
    const addresses = await Promise.race([
      vetted(host, options),
      new Promise<never>((_resolve, reject) =>
        abort.signal.addEventListener('abort', () => reject(new MetadataFetchError(`no answer within ${timeoutMs} ms`))),
      ),
    ]);
    return await get(url, host, addresses[0]!, { ...options, maxBytes, signal: abort.signal, timeoutMs });
  } finally {
    clearTimeout(timer);
  }
}

/** The host's addresses, all of them public (or loopback when allowed); else a refusal. */
async function vetted(host: string, options: MetadataFetchOptions): Promise<readonly ResolvedAddress[]> {
  let addresses: readonly ResolvedAddress[];
  if (isIP(host) !== 0) addresses = [{ address: host, family: isIP(host) === 6 ? 6 : 4 }];
  else {
    try {
      addresses = await (options.resolve ?? defaultResolve)(host);
    } catch {
      throw new MetadataFetchError(`the host ${host} could not be resolved`);
    }
  }
  if (addresses.length === 0) throw new MetadataFetchError(`the host ${host} has no address`);
  for (const { address } of addresses) {
    const problem = addressProblem(address, { allowLoopback: options.allowLoopback ?? false });
    if (problem !== undefined) throw new MetadataFetchError(`the host ${host} resolves to ${problem}; client metadata documents must be on public addresses`);
  }
  return addresses;
}

function get(
  url: URL,
  host: string,
  pinned: ResolvedAddress,
  options: MetadataFetchOptions & { readonly maxBytes: number; readonly signal: AbortSignal; readonly timeoutMs: number },
): Promise<FetchedDocument> {
  // The connection goes to the vetted address whatever a second lookup would say.
  const lookup: LookupFunction = (_hostname, lookupOptions, callback) => {
    if ((lookupOptions as { all?: boolean }).all) (callback as unknown as (e: null, a: ResolvedAddress[]) => void)(null, [pinned]);
    else callback(null, pinned.address, pinned.family);
  };
  return new Promise((resolve, reject) => {
    const req = request(
      {
        protocol: 'https:',
        hostname: host,
        port: url.port === '' ? 443 : Number(url.port),
        path: `${url.pathname}${url.search}`,
        method: 'GET',
        headers: { Accept: 'application/json', 'User-Agent': 'mcp-warden' },
        lookup,
        agent: false,
        signal: options.signal,
        ...(isIP(host) === 0 ? { servername: host } : {}),
        ...(options.ca !== undefined ? { ca: options.ca } : {}),
      },
      (res) => {
        const status = res.statusCode ?? 0;
        const fail = (message: string) => {
          res.destroy();
          reject(new MetadataFetchError(message));
        };
        if (status >= 300 && status < 400) return fail(`it answered with a redirect (HTTP ${status}), which is not followed`);
        if (status !== 200) return fail(`it answered HTTP ${status}`);
        if (!JSON_TYPE.test(res.headers['content-type'] ?? '')) return fail('it is not application/json');
        const declared = Number(res.headers['content-length'] ?? '0');
        if (declared > options.maxBytes) return fail(`it is larger than ${options.maxBytes} bytes`);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > options.maxBytes) return fail(`it is larger than ${options.maxBytes} bytes`);
          chunks.push(chunk);
        });
        res.once('end', () => resolve({ text: Buffer.concat(chunks).toString('utf8'), maxAgeSeconds: maxAgeOf(res.headers['cache-control']) }));
        res.once('error', () => reject(new MetadataFetchError('the connection failed while reading it')));
      },
    );
    req.once('error', (error: NodeJS.ErrnoException) => {
      if (options.signal.aborted) reject(new MetadataFetchError(`no answer within ${options.timeoutMs} ms`));
      else reject(new MetadataFetchError(`it could not be fetched (${error.code ?? 'connection failed'})`));
    });
    req.end();
  });
}
