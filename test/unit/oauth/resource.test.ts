/**
 * The resource server's names: resource URLs after the public origin, the metadata path, a
 * `resource` parameter read back (case of scheme and host, a trailing slash; never another
 * origin, a fragment or a query), and challenges the v2 client's parser reads as meant.
 */
import { describe, expect, it } from '@jest/globals';
import { routeOf } from '../../../src/http/routes.js';
import { ResourceServer } from '../../../src/oauth/resource.js';

const rs = new ResourceServer('https://gw.example');

describe('ResourceServer', () => {
  it('names each endpoint and its metadata after the public origin', () => {
    expect(rs.resourceUrl('a%2Fb', 'mcp')).toBe('https://gw.example/a%2Fb/mcp');
    expect(rs.metadataUrl('k', 'sse')).toBe('https://gw.example/.well-known/oauth-protected-resource/k/sse');
    expect(ResourceServer.metadataPath('/.well-known/oauth-protected-resource/a%2Fb/mcp')).toEqual({ segment: 'a%2Fb', endpoint: 'mcp' });
    expect(ResourceServer.metadataPath('/.well-known/oauth-protected-resource')).toBeUndefined();
    expect(ResourceServer.metadataPath('/.well-known/oauth-protected-resource/k/messages')).toBeUndefined();
  });

  it.each([
    ['https://gw.example/k/mcp', { key: 'k', endpoint: 'mcp' }],
    ['HTTPS://GW.EXAMPLE/k/sse/', { key: 'k', endpoint: 'sse' }],
    ['https://gw.example/a%2Fb/mcp', { key: 'a/b', endpoint: 'mcp' }],
  ])('reads %s back', (resource, expected) => {
    expect(rs.parse(resource)).toMatchObject(expected);
  });

  it.each([
    'https://gw.example',
    'https://other.example/k/mcp',
    'https://gw.example/k/mcp#x',
    'https://gw.example/k/mcp?x=1',
    'http://gw.example/k/mcp',
    'https://gw.example/k/messages',
    'not a url',
  ])('refuses %s', (resource) => {
    expect(rs.parse(resource)).toBeUndefined();
  });

  it("challenges with the endpoint's metadata (SSE messages point at /sse), and keeps descriptions from looking like parameters", () => {
    expect(rs.challenge(routeOf('/k/mcp'))).toBe(
      'Bearer realm="mcp-warden", resource_metadata="https://gw.example/.well-known/oauth-protected-resource/k/mcp", scope="mcp"',
    );
    expect(rs.challenge(routeOf('/k/messages?sessionId=1'))).toContain('oauth-protected-resource/k/sse"');
    const bad = rs.challenge(routeOf('/k/mcp'), { error: 'invalid_token', description: 'a "quoted" scope=admin\\ thing' });
    expect(bad).toContain('error_description="a quoted scopeadmin thing"');
    // The v2 client's parser: the first `name=` occurrence wins.
    expect(/scope=(?:"([^"]+)"|([^\s,]+))/.exec(bad)?.[1]).toBe('mcp');
  });
});

describe('a ResourceServer with another required scope', () => {
  it('names that scope, or none when empty, in challenges and metadata', () => {
    const route = routeOf('/k/mcp');
    const custom = new ResourceServer('https://gw.example', 'gateway');
    expect(custom.challenge(route)).toBe(
      'Bearer realm="mcp-warden", resource_metadata="https://gw.example/.well-known/oauth-protected-resource/k/mcp", scope="gateway"',
    );
    expect(custom.metadata('k', 'mcp', 'https://idp.example/')).toMatchObject({
      authorization_servers: ['https://idp.example/'],
      scopes_supported: ['gateway'],
    });
    const none = new ResourceServer('https://gw.example', '');
    expect(none.challenge(route)).toBe('Bearer realm="mcp-warden", resource_metadata="https://gw.example/.well-known/oauth-protected-resource/k/mcp"');
    expect(none.metadata('k', 'mcp', 'https://idp.example/')).not.toHaveProperty('scopes_supported');
  });
});
