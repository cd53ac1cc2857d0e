/**
 * A test identity provider on loopback (plain http, which the gateway takes only with
 * --oauth-allow-loopback-issuer): its OpenID Connect discovery document and its JWKS, key
 * pairs made here with jose, and JWT access tokens signed with them. Its issuer has a path
 * (`/realms/test`, the way Keycloak names one), and it serves only the path-appended OIDC
 * document, so the gateway has to walk the discovery order to find it.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, exportSPKI, generateKeyPair, SignJWT, type CryptoKey, type JWTPayload } from 'jose';

export interface TestKey {
  readonly kid: string;
  readonly alg: 'RS256' | 'ES256';
  readonly privateKey: CryptoKey;
  readonly publicKey: CryptoKey;
}

export interface SignOptions {
  /** Sign with this key (default: the first key the provider publishes). */
  readonly key?: TestKey;
  /** Header `kid`; default the key's. */
  readonly kid?: string;
}

export interface TestIdp {
  readonly issuer: string;
  readonly jwksUrl: string;
  /** The published keys, the first used by default. */
  readonly keys: TestKey[];
  /** Paths requested, in order. */
  readonly requests: string[];
  /** A token with these claims (iss, iat and a 5-minute exp unless given). */
  sign(claims: JWTPayload, options?: SignOptions): Promise<string>;
  /** A key pair not (yet) published. */
  newKey(kid: string, alg?: 'RS256' | 'ES256'): Promise<TestKey>;
  /** Publishes `key` next to the others (a rotation). */
  publish(key: TestKey): void;
  /** The SPKI PEM of the first key (what an HS256 forgery uses as its secret). */
  publicPem(): Promise<string>;
  /** How many times the JWKS was fetched. */
  jwksFetches(): number;
  close(): Promise<void>;
}

export async function makeKey(kid: string, alg: 'RS256' | 'ES256' = 'RS256'): Promise<TestKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, publicKey };
}

export async function startIdp(): Promise<TestIdp> {
  const keys: TestKey[] = [await makeKey('key-1')];
  const requests: string[] = [];
  let issuer = '';
  const jwks = async () => ({ keys: await Promise.all(keys.map(async (k) => ({ ...(await exportJWK(k.publicKey)), kid: k.kid, alg: k.alg, use: 'sig' }))) });
  const server: Server = createServer((req, res) => {
    const path = req.url ?? '/';
    requests.push(path);
    const json = (body: unknown) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify(body));
    if (path === '/realms/test/.well-known/openid-configuration')
      return json({ issuer, jwks_uri: `${issuer}/keys`, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token` });
    if (path === '/realms/test/keys') return void jwks().then(json, () => res.writeHead(500).end());
    res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}/realms/test`;
  return {
    issuer,
    jwksUrl: `${issuer}/keys`,
    keys,
    requests,
    sign: (claims, options = {}) => {
      const key = options.key ?? keys[0]!;
      const now = Math.floor(Date.now() / 1000);
      return new SignJWT({ iss: issuer, iat: now, exp: now + 300, ...claims })
        .setProtectedHeader({ alg: key.alg, kid: options.kid ?? key.kid, typ: 'at+jwt' })
        .sign(key.privateKey);
    },
    newKey: (kid, alg = 'RS256') => makeKey(kid, alg),
    publish: (key) => void keys.push(key),
    publicPem: () => exportSPKI(keys[0]!.publicKey),
    jwksFetches: () => requests.filter((p) => p === '/realms/test/keys').length,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
