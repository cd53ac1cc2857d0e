/**
 * Discovering an identity provider: the metadata URLs in the specification's order (path
 * insertion for RFC 8414, insertion then appending for OpenID Connect; a trailing slash is no
 * path), the first document that answers deciding, its issuer compared exactly, its jwks_uri
 * required and https, redirects not followed, and a start error that says where it looked.
 */
import { describe, expect, it } from '@jest/globals';
import { discoverProvider, discoveryUrls, DiscoveryError } from '../../../src/oauth/discovery.js';

describe('discoveryUrls', () => {
  it.each<[string, string[]]>([
    ['https://idp.example.com', ['https://idp.example.com/.well-known/oauth-authorization-server', 'https://idp.example.com/.well-known/openid-configuration']],
    [
      'https://tenant.auth0.com/',
      ['https://tenant.auth0.com/.well-known/oauth-authorization-server', 'https://tenant.auth0.com/.well-known/openid-configuration'],
    ],
    [
      'https://kc.example.com/realms/mcp',
      [
        'https://kc.example.com/.well-known/oauth-authorization-server/realms/mcp',
        'https://kc.example.com/.well-known/openid-configuration/realms/mcp',
        'https://kc.example.com/realms/mcp/.well-known/openid-configuration',
      ],
    ],
    [
      'https://login.microsoftonline.com/tid/v2.0/',
      [
        'https://login.microsoftonline.com/.well-known/oauth-authorization-server/tid/v2.0',
        'https://login.microsoftonline.com/.well-known/openid-configuration/tid/v2.0',
        'https://login.microsoftonline.com/tid/v2.0/.well-known/openid-configuration',
      ],
    ],
  ])('%s', (issuer, urls) => {
    expect(discoveryUrls(issuer)).toEqual(urls);
  });
});

/** A fetch that answers from a table of URL -> [status, body] (absent: 404). */
function fakeFetch(table: Record<string, [number, unknown, Record<string, string>?]>, seen: string[] = []): typeof fetch {
  return (async (input: string | URL | Request) => {
    const url = String(input);
    seen.push(url);
    const entry = table[url];
    if (!entry) return new Response('not here', { status: 404 });
    const [status, body, headers = {}] = entry;
    return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...headers } });
  }) as typeof fetch;
}

const ISSUER = 'https://kc.example.com/realms/mcp';
const OIDC = 'https://kc.example.com/realms/mcp/.well-known/openid-configuration';

describe('discoverProvider', () => {
  it('walks the order to the first document that answers', async () => {
    const seen: string[] = [];
    const found = await discoverProvider(ISSUER, { fetch: fakeFetch({ [OIDC]: [200, { issuer: ISSUER, jwks_uri: `${ISSUER}/certs` }] }, seen) });
    expect(found).toEqual({ issuer: ISSUER, jwksUri: `${ISSUER}/certs`, source: OIDC });
    expect(seen).toEqual(discoveryUrls(ISSUER));
  });

  it('refuses a document naming another issuer (a trailing slash differs), saying so', async () => {
    const attempt = discoverProvider(`${ISSUER}/`, { fetch: fakeFetch({ [OIDC]: [200, { issuer: ISSUER, jwks_uri: `${ISSUER}/certs` }] }) });
    await expect(attempt).rejects.toThrow(DiscoveryError);
    await expect(attempt).rejects.toThrow(/names the issuer "https:\/\/kc.example.com\/realms\/mcp", not ".*realms\/mcp\/".*trailing slash/);
  });

  it.each<[string, [number, unknown, Record<string, string>?], RegExp]>([
    ['no jwks_uri', [200, { issuer: ISSUER }], /has no jwks_uri; set --oauth-jwks-url/],
    ['an http jwks_uri', [200, { issuer: ISSUER, jwks_uri: 'http://kc.example.com/certs' }], /jwks_uri .* must be https/],
  ])('refuses a document with %s', async (_name, answer, pattern) => {
    await expect(discoverProvider(ISSUER, { fetch: fakeFetch({ [OIDC]: answer }) })).rejects.toThrow(pattern);
  });

  it('follows no redirect and reads no non-JSON, then says where it looked and what to set', async () => {
    const fetchImpl = fakeFetch({
      'https://kc.example.com/.well-known/oauth-authorization-server/realms/mcp': [302, '', { Location: 'https://elsewhere.example/' }],
      'https://kc.example.com/.well-known/openid-configuration/realms/mcp': [200, '<html>'],
    });
    const attempt = discoverProvider(ISSUER, { fetch: fetchImpl });
    await expect(attempt).rejects.toThrow(/redirect \(HTTP 302\), which is not followed/);
    await expect(attempt).rejects.toThrow(/openid-configuration\/realms\/mcp is not JSON/);
    await expect(attempt).rejects.toThrow(/answered HTTP 404\. Check --oauth-issuer, or set --oauth-jwks-url/);
  });

  it('gives up on a provider that does not answer in time', async () => {
    const silent = ((_url: string, init?: RequestInit) =>
      new Promise((_resolve, reject) => init?.signal?.addEventListener('abort', () => reject(init.signal!.reason)))) as unknown as typeof fetch;
    await expect(discoverProvider('https://idp.example.com', { fetch: silent, timeoutMs: 50 })).rejects.toThrow(
      /no answer within 50 ms.*no answer within 50 ms/,
    );
  });

  it('refuses a document larger than it reads', async () => {
    const big = { issuer: ISSUER, jwks_uri: `${ISSUER}/certs`, padding: 'x'.repeat(300 * 1024) };
    await expect(discoverProvider(ISSUER, { fetch: fakeFetch({ [OIDC]: [200, big] }) })).rejects.toThrow(/larger than 262144 bytes/);
  });
});
