/**
 * Driving OAuth without a browser: a headless provider for the v2 client's own OAuth
 * support, the consent page filled in over plain HTTP, a raw flow (register, authorize,
 * consent, token) for the failure tests, PKCE pairs, and an https server on loopback (with a
 * self-signed certificate made by openssl for the test) that serves client metadata documents.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  Client,
  StreamableHTTPClientTransport,
  UnauthorizedError,
  type OAuthClientInformationContext,
  type OAuthClientMetadata,
  type OAuthClientProvider,
  type OAuthDiscoveryState,
  type StoredOAuthClientInformation,
  type StoredOAuthTokens,
} from '@modelcontextprotocol/client';

export const REDIRECT_URL = 'http://127.0.0.1:1/callback';

export class HeadlessOAuthProvider implements OAuthClientProvider {
  authorizationUrl?: URL;
  lastState?: string;
  private client?: StoredOAuthClientInformation;
  private stored?: StoredOAuthTokens;
  private verifier?: string;
  private discovery?: OAuthDiscoveryState;

  /**
   * Pass an https URL (with a path) to register by metadata document; omit it for DCR.
   * `redirectUrl` is never contacted over plain HTTP (the test reads Location); a browser
   * test points it at a server of its own.
   */
  constructor(
    readonly clientMetadataUrl?: string,
    readonly redirectUrl: string = REDIRECT_URL,
  ) {}

  get clientMetadata(): OAuthClientMetadata {
    return {
      client_name: 'warden-test',
      redirect_uris: [this.redirectUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    };
  }
  state() {
    this.lastState = randomUUID();
    return this.lastState;
  }
  clientInformation(_ctx?: OAuthClientInformationContext) {
    return this.client;
  }
  saveClientInformation(info: StoredOAuthClientInformation) {
    this.client = info;
  }
  tokens(_ctx?: OAuthClientInformationContext) {
    return this.stored;
  }
  saveTokens(tokens: StoredOAuthTokens) {
    this.stored = tokens;
  }
  redirectToAuthorization(url: URL) {
    this.authorizationUrl = url;
  }
  saveCodeVerifier(v: string) {
    this.verifier = v;
  }
  codeVerifier() {
    if (this.verifier === undefined) throw new Error('no PKCE verifier');
    return this.verifier;
  }
  saveDiscoveryState(s: OAuthDiscoveryState) {
    this.discovery = s;
  }
  discoveryState() {
    return this.discovery;
  }
  invalidateCredentials(scope: 'all' | 'client' | 'tokens' | 'verifier' | 'discovery') {
    if (scope === 'all' || scope === 'client') this.client = undefined;
    if (scope === 'all' || scope === 'tokens') this.stored = undefined;
    if (scope === 'all' || scope === 'verifier') this.verifier = undefined;
    if (scope === 'all' || scope === 'discovery') this.discovery = undefined;
  }
  /** The access token the client holds now. */
  get accessToken(): string | undefined {
    return this.stored?.access_token;
  }
}

/** The consent page's form: its action and hidden fields. */
export async function readForm(page: Response): Promise<{ action: string; fields: URLSearchParams; html: string }> {
  const html = await page.text();
  const action = /<form[^>]*action="([^"]+)"/.exec(html)?.[1] ?? '/authorize';
  const fields = new URLSearchParams();
  for (const [, name, value] of html.matchAll(/<input[^>]*type="hidden"[^>]*name="([^"]+)"[^>]*value="([^"]*)"/g))
    fields.set(name!, value!.replace(/&amp;/g, '&'));
  return { action, fields, html };
}

/** Posts a page's form back with `fields` added; the raw answer (redirects not followed). */
export async function postForm(pageUrl: URL, form: { action: string; fields: URLSearchParams }, fields: Record<string, string>): Promise<Response> {
  const body = new URLSearchParams(form.fields);
  for (const [k, v] of Object.entries(fields)) body.set(k, v);
  return fetch(new URL(form.action, pageUrl), { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body, redirect: 'manual' });
}

/**
 * Consent over plain HTTP: GET the page, POST its form back (approve, plus `fields`, e.g. the
 * credential), then the env page if one follows (`env`: its fields); returns the redirect's query.
 */
export async function consent(authorizationUrl: URL, fields: Record<string, string>, env?: Record<string, string>): Promise<URLSearchParams> {
  const page = await fetch(authorizationUrl, { redirect: 'manual' });
  if (page.status !== 200) throw new Error(`authorize page: HTTP ${page.status} ${await page.text()}`);
  let answer = await postForm(authorizationUrl, await readForm(page), { decision: 'approve', ...fields });
  if (answer.status === 200 && env !== undefined) {
    answer = await postForm(authorizationUrl, await readForm(answer), { decision: 'approve', ...env });
  }
  const location = answer.headers.get('location');
  if ((answer.status !== 302 && answer.status !== 303) || !location) throw new Error(`consent: HTTP ${answer.status} ${await answer.text()}`);
  return new URL(location).searchParams;
}

export type NegotiationMode = { pin: '2026-07-28' } | 'legacy';

function newClient(mode: NegotiationMode): Client {
  return mode === 'legacy'
    ? new Client({ name: 'warden-test', version: '1.0.0' })
    : new Client({ name: 'warden-test', version: '1.0.0' }, { versionNegotiation: { mode } });
}

/** Who approves: the consent form's fields (posted over plain HTTP), or a function that takes the authorization URL to the redirect's query (a browser). */
export type Approval = Record<string, string> | ((authorizationUrl: URL) => Promise<URLSearchParams>);

/** 401 -> discovery -> metadata document or DCR -> consent -> finishAuth -> a connected client. */
export async function connectWithOAuth(mcpUrl: URL, provider: HeadlessOAuthProvider, approval: Approval, mode: NegotiationMode = 'legacy'): Promise<Client> {
  const first = new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider });
  try {
    await newClient(mode).connect(first);
    throw new Error('expected the first connect to need authorization');
  } catch (error) {
    if (!(error instanceof UnauthorizedError)) throw error;
  }
  if (!provider.authorizationUrl) throw new Error('redirectToAuthorization was not called');
  const callback = typeof approval === 'function' ? await approval(provider.authorizationUrl) : await consent(provider.authorizationUrl, approval);
  if (callback.get('state') !== provider.lastState) throw new Error('state mismatch');
  await first.finishAuth(callback);
  await first.close().catch(() => undefined);
  const client = newClient(mode);
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider: provider }));
  return client;
}

/** A PKCE verifier and its S256 challenge. */
export function pkcePair(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** Registers a public client by DCR; its client_id. */
export async function registerClient(base: string, extra: Record<string, unknown> = {}): Promise<Record<string, any>> {
  const res = await fetch(`${base}/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      client_name: 'raw-test',
      redirect_uris: [REDIRECT_URL],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
      ...extra,
    }),
  });
  if (res.status !== 201) throw new Error(`register: HTTP ${res.status} ${await res.text()}`);
  return (await res.json()) as Record<string, any>;
}

/** An authorization URL with the usual parameters (override or drop any with `params`: undefined drops). */
export function authorizeUrl(base: string, params: Record<string, string | undefined>): URL {
  const url = new URL(`${base}/authorize`);
  const all: Record<string, string | undefined> = {
    response_type: 'code',
    redirect_uri: REDIRECT_URL,
    code_challenge_method: 'S256',
    state: 'st-1',
    scope: 'mcp offline_access',
    ...params,
  };
  for (const [k, v] of Object.entries(all)) if (v !== undefined) url.searchParams.set(k, v);
  return url;
}

/** POST /token with `form`; status and JSON body. */
export async function tokenRequest(base: string, form: Record<string, string>): Promise<{ status: number; body: Record<string, any> }> {
  const res = await fetch(`${base}/token`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(form),
  });
  return { status: res.status, body: (await res.json()) as Record<string, any> };
}

/**
 * The whole flow without the v2 client: DCR (unless `clientId`), authorize for `resource`,
 * consent with `credential`, code for tokens. Returns the tokens and what was used.
 */
export async function rawGrant(
  base: string,
  resource: string,
  credential: string,
  options: { clientId?: string; env?: Record<string, string>; tokenBase?: string } = {},
) {
  const clientId = options.clientId ?? ((await registerClient(base)).client_id as string);
  const { verifier, challenge } = pkcePair();
  const callback = await consent(authorizeUrl(base, { client_id: clientId, code_challenge: challenge, resource }), { credential }, options.env);
  const code = callback.get('code');
  if (!code) throw new Error(`no code: ${callback.toString()}`);
  const token = await tokenRequest(options.tokenBase ?? base, {
    grant_type: 'authorization_code',
    code,
    code_verifier: verifier,
    redirect_uri: REDIRECT_URL,
    client_id: clientId,
    resource,
  });
  if (token.status !== 200) throw new Error(`token: HTTP ${token.status} ${JSON.stringify(token.body)}`);
  return { clientId, code, verifier, tokens: token.body as { access_token: string; refresh_token?: string; expires_in: number; scope: string } };
}

/** A self-signed certificate for 127.0.0.1, made by openssl in a temp folder. */
export async function selfSignedCert(): Promise<{ key: string; cert: string }> {
  if (!(await opensslAvailable())) throw new Error('`openssl version` failed: the OAuth tests need openssl to make a certificate for their https server');
  const dir = mkdtempSync(join(tmpdir(), 'warden-cert-'));
  const key = join(dir, 'key.pem');
  const cert = join(dir, 'cert.pem');
  await promisify(execFile)('openssl', [
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-days',
    '1',
    '-subj',
    '/CN=127.0.0.1',
    '-addext',
    'subjectAltName=IP:127.0.0.1',
    '-keyout',
    key,
    '-out',
    cert,
  ]);
  return { key: readFileSync(key, 'utf8'), cert: readFileSync(cert, 'utf8') };
}

/** Whether `openssl version` runs here. */
export async function opensslAvailable(): Promise<boolean> {
  try {
    await promisify(execFile)('openssl', ['version']);
    return true;
  } catch {
    return false;
  }
}

export interface MetadataServer {
  /** The URL of `path` on this server (https://127.0.0.1:PORT/path). */
  url(path: string): string;
  /** Serves `body` (an object: JSON of it; a string: as is) at `path`, with `status` (default 200). */
  serve(path: string, body: unknown, headers?: Record<string, string>, status?: number): void;
  /** How many times `path` was fetched. */
  hits(path: string): number;
  close(): Promise<void>;
}

/** An https server on loopback serving client metadata documents. */
export async function startMetadataServer(tls: { key: string; cert: string }): Promise<MetadataServer> {
  const documents = new Map<string, { body: string; headers: Record<string, string>; status: number }>();
  const counts = new Map<string, number>();
  const server: Server = createServer(tls, (req, res) => {
    const path = req.url ?? '/';
    counts.set(path, (counts.get(path) ?? 0) + 1);
    const doc = documents.get(path);
    if (!doc) return void res.writeHead(404).end();
    res.writeHead(doc.status, { 'Content-Type': 'application/json', ...doc.headers }).end(doc.body);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: (path) => `https://127.0.0.1:${port}${path}`,
    serve: (path, body, headers = {}, status = 200) =>
      void documents.set(path, { body: typeof body === 'string' ? body : JSON.stringify(body), headers, status }),
    hits: (path) => counts.get(path) ?? 0,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
