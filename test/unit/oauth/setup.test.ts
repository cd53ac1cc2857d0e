/**
 * OAuth's public origin: the setting wins; a loopback gateway names itself after the port it
 * bound; anywhere else OAuth without --public-url stops the start, saying what to set. The
 * built-in server and an external provider exclude each other.
 */
import { describe, expect, it } from '@jest/globals';
import { validateSettings } from '../../../src/config/settings.js';
import { checkOAuthSettings, publicOrigin } from '../../../src/oauth/setup.js';

const KEY = 'k'.repeat(32);

describe('the public origin', () => {
  it('is the setting when there is one, else the loopback address bound', () => {
    expect(publicOrigin(validateSettings({ publicUrl: 'https://mcp.example.com' }), 8000)).toBe('https://mcp.example.com');
    expect(publicOrigin(validateSettings({ host: '127.0.0.1' }), 4321)).toBe('http://127.0.0.1:4321');
    expect(publicOrigin(validateSettings({ host: '::1' }), 4321)).toBe('http://[::1]:4321');
    expect(publicOrigin(validateSettings({ host: '0.0.0.0' }), 4321)).toBeUndefined();
  });

  it('must be set for OAuth on a gateway not bound to loopback', () => {
    expect(() => checkOAuthSettings(validateSettings({ host: '0.0.0.0', oauthKey: KEY }))).toThrow(/--public-url \(WARDEN_PUBLIC_URL\) is not/);
    expect(() => checkOAuthSettings(validateSettings({ host: '0.0.0.0', oauthKey: KEY, publicUrl: 'https://gw.example' }))).not.toThrow();
    expect(() => checkOAuthSettings(validateSettings({ host: '0.0.0.0' }))).not.toThrow();
  });
});

describe('an external identity provider', () => {
  const ISSUER = 'https://idp.example.com/';

  it('needs the public origin as well, off loopback', () => {
    expect(() => checkOAuthSettings(validateSettings({ host: '0.0.0.0', oauthIssuer: ISSUER }))).toThrow(
      /^--oauth-issuer \(WARDEN_OAUTH_ISSUER\) is set but --public-url \(WARDEN_PUBLIC_URL\) is not/,
    );
    expect(() => checkOAuthSettings(validateSettings({ host: '0.0.0.0', oauthIssuer: ISSUER, publicUrl: 'https://gw.example' }))).not.toThrow();
  });

  it('excludes the built-in server, and its settings need it', () => {
    expect(() => checkOAuthSettings(validateSettings({ oauthIssuer: ISSUER, oauthKey: KEY }))).toThrow(
      /^WARDEN_OAUTH_KEY and --oauth-issuer \(WARDEN_OAUTH_ISSUER\) are both set/,
    );
    expect(() => checkOAuthSettings(validateSettings({ oauthAudience: 'api://x' }))).toThrow(
      /^--oauth-audience \(WARDEN_OAUTH_AUDIENCE\) is set without --oauth-issuer/,
    );
    expect(() => checkOAuthSettings(validateSettings({ oauthIssuer: ISSUER, oauthRoleMap: 'a=b' }))).toThrow(/is set without --oauth-role-claim/);
  });
});
