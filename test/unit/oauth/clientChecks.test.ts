/**
 * The pure checks about clients: redirect URIs (registration policy, exact matching and the
 * loopback-port rule), metadata document URLs and documents, and the address guard of the
 * metadata fetch when a host name resolves to a private address (any one of them).
 */
import { describe, expect, it } from '@jest/globals';
import { clientFromDocument, metadataUrlProblem } from '../../../src/oauth/clientMetadata.js';
import { fetchMetadataDocument, maxAgeOf } from '../../../src/oauth/metadataFetch.js';
import { redirectMatches, redirectUriProblem } from '../../../src/oauth/redirects.js';

describe('redirect URIs', () => {
  it.each([
    ['https://app.example/cb', undefined],
    ['http://127.0.0.1/cb', undefined],
    ['http://localhost:8080/cb', undefined],
    ['com.example.app:/oauth', undefined],
    ['http://app.example/cb', /loopback/],
    ['javascript:alert(1)', /scheme/],
    ['https://app.example/cb#x', /fragment/],
  ])('%s', (uri, problem) => {
    const found = redirectUriProblem(uri);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toMatch(problem);
  });

  it('match exactly, except for the port of an http loopback URI', () => {
    expect(redirectMatches(['https://app.example/cb'], 'https://app.example/cb')).toBe(true);
    expect(redirectMatches(['https://app.example/cb'], 'https://app.example/cb/')).toBe(false);
    expect(redirectMatches(['https://app.example/cb'], 'https://app.example:8443/cb')).toBe(false);
    expect(redirectMatches(['http://127.0.0.1/callback'], 'http://127.0.0.1:53120/callback')).toBe(true);
    expect(redirectMatches(['http://localhost/callback'], 'http://localhost:1/callback')).toBe(true);
    expect(redirectMatches(['http://127.0.0.1/callback'], 'http://127.0.0.1:1/other')).toBe(false);
    expect(redirectMatches(['http://127.0.0.1/callback'], 'http://localhost:1/callback')).toBe(false);
    expect(redirectMatches(['http://127.0.0.1/callback?a=1'], 'http://127.0.0.1:9/callback?a=2')).toBe(false);
  });
});

describe('metadata documents', () => {
  it.each([
    ['https://app.example/client.json', undefined],
    ['http://app.example/client.json', /https/],
    ['https://app.example/', /path/],
    ['https://app.example/a/../client.json', /normalised/],
    ['https://APP.example/client.json', /normalised/],
    ['https://user@app.example/client.json', /user name/],
    ['https://app.example/client.json#x', /fragment/],
  ])('client_id %s', (id, problem) => {
    const found = metadataUrlProblem(id);
    if (problem === undefined) expect(found).toBeUndefined();
    else expect(found).toMatch(problem);
  });

  it('need their own URL as client_id, a name and redirect URIs, and no shared secret', () => {
    const id = 'https://app.example/client.json';
    const doc = { client_id: id, client_name: 'App', redirect_uris: ['https://app.example/cb'] };
    expect(clientFromDocument(id, JSON.stringify(doc))).toMatchObject({ id, name: 'App', authMethod: 'none', grantTypes: ['authorization_code'] });
    expect(() => clientFromDocument(id, JSON.stringify({ ...doc, client_id: 'https://other.example/c.json' }))).toThrow(/another client_id/);
    expect(() => clientFromDocument(id, JSON.stringify({ ...doc, client_name: undefined }))).toThrow(/client_name/);
    expect(() => clientFromDocument(id, JSON.stringify({ ...doc, redirect_uris: [] }))).toThrow(/redirect_uris/);
    expect(() => clientFromDocument(id, JSON.stringify({ ...doc, token_endpoint_auth_method: 'client_secret_post' }))).toThrow(/not supported/);
    expect(() => clientFromDocument(id, '[]')).toThrow(/JSON object/);
  });

  it('read Cache-Control', () => {
    expect(maxAgeOf('public, max-age=600')).toBe(600);
    expect(maxAgeOf('no-store')).toBe(0);
    expect(maxAgeOf(undefined)).toBeUndefined();
  });

  it('are not fetched when a host name resolves to a private address, even one of several', async () => {
    const resolve = async () => [
      { address: '93.184.215.14', family: 4 as const },
      { address: '10.0.0.5', family: 4 as const },
    ];
    await expect(fetchMetadataDocument(new URL('https://rebind.example/client.json'), { resolve })).rejects.toThrow(/resolves to a private address/);
    const metadata = async () => [{ address: '169.254.169.254', family: 4 as const }];
    await expect(fetchMetadataDocument(new URL('https://metadata.example/c.json'), { resolve: metadata, allowLoopback: true })).rejects.toThrow(/link-local/);
  });
});
