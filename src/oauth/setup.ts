/**
 * OAuth from settings: whether it is on, and how: the built-in authorization server
 * (WARDEN_OAUTH_KEY) or an external identity provider (--oauth-issuer), never both; the
 * public origin it names its resources after; for the built-in server, where grants live
 * (the rate limiter's Redis when there is one, else this process); for a provider, its keys
 * (discovered at start); and the server for the port actually bound (the origin of a
 * loopback gateway depends on it).
 */
import { idpUrlProblem, oauthInputProblem } from '../config/oauthSettings.js';
import { SOURCES, type Settings } from '../config/settings.js';
import { isLoopbackAddress } from '../http/hostGuard.js';
import type { Logger } from '../logging/logger.js';
import type { LimiterStore } from '../ratelimit/limiter.js';
import { discoverProvider, type ProviderMetadata } from './discovery.js';
import { createExternalProvider } from './external.js';
import { RedisGrantStore } from './redisStore.js';
import { createOAuthServer, type OAuthServer, type OAuthServerOptions } from './server.js';
import { MemoryGrantStore, type GrantStore } from './store.js';

/** What the gateway hands over besides settings: everything but what settings decide. */
export type OAuthParts = Omit<
  OAuthServerOptions,
  'publicUrl' | 'key' | 'previousKey' | 'accessTtlMs' | 'grantTtlMs' | 'refreshGraceMs' | 'allowLoopbackMetadata' | 'store' | 'registerLimiter' | 'now'
>;

/** The public origin: the setting, or the loopback address bound; undefined elsewhere. */
export function publicOrigin(settings: Settings, port: number): string | undefined {
  if (settings.publicUrl) return settings.publicUrl;
  if (!isLoopbackAddress(settings.host)) return undefined;
  const host = settings.host.includes(':') && !settings.host.startsWith('[') ? `[${settings.host}]` : settings.host;
  return `http://${host}:${port}`;
}

/** `--flag (VARIABLE)` of a settings key. */
function flagOf(key: string): string {
  const source = SOURCES.find(([, , k]) => k === key);
  return source ? `--${source[0]} (${source[1]})` : key;
}

/** @throws {TypeError} when the OAuth settings cannot work together. */
export function checkOAuthSettings(settings: Settings): void {
  const problem = oauthInputProblem(settings, (key) => (key === 'oauthKey' ? 'WARDEN_OAUTH_KEY' : flagOf(key)), false);
  if (problem !== undefined) throw new TypeError(problem);
  const on = settings.oauthKey ? 'WARDEN_OAUTH_KEY' : settings.oauthIssuer ? '--oauth-issuer (WARDEN_OAUTH_ISSUER)' : undefined;
  if (on && !settings.publicUrl && !isLoopbackAddress(settings.host)) {
    throw new TypeError(
      `${on} is set but --public-url (WARDEN_PUBLIC_URL) is not: OAuth names its resources after the public origin, e.g. https://app.fly.dev`,
    );
  }
  for (const key of ['oauthIssuer', 'oauthJwksUrl'] as const) {
    const url = settings[key];
    const urlProblem = url === undefined ? undefined : idpUrlProblem(url, settings.oauthAllowLoopbackIssuer);
    if (urlProblem !== undefined) throw new TypeError(`${flagOf(key)} ${urlProblem}`);
  }
}

/**
 * The external identity provider's issuer and keys, or undefined without one: the JWKS URL
 * set, else discovered from the provider's metadata now.
 * @throws {import('./discovery.js').DiscoveryError} when its metadata cannot be fetched or is wrong
 */
export async function resolveProvider(settings: Settings): Promise<ProviderMetadata | undefined> {
  const issuer = settings.oauthIssuer;
  if (issuer === undefined) return undefined;
  if (settings.oauthJwksUrl !== undefined) return { issuer, jwksUri: settings.oauthJwksUrl, source: '--oauth-jwks-url' };
  return discoverProvider(issuer, { allowLoopbackHttp: settings.oauthAllowLoopbackIssuer });
}

export interface OAuthSetup {
  readonly mode: 'built-in' | 'external';
  /** Built-in: where grants live. */
  readonly store?: GrantStore;
  /** The server for the bound port. */
  build(port: number): OAuthServer;
}

/** Undefined when OAuth is off. `provider`: what `resolveProvider` found. */
export function oauthSetup(settings: Settings, limiterStore: LimiterStore, parts: OAuthParts, provider?: ProviderMetadata): OAuthSetup | undefined {
  if (provider) return externalSetup(settings, provider, parts.logger);
  const key = settings.oauthKey;
  if (!key) return undefined;
  const store: GrantStore = limiterStore.redis ? new RedisGrantStore(limiterStore.redis, limiterStore.keyPrefix) : new MemoryGrantStore();
  const registerLimiter = limiterStore.create('oauth-register', { points: settings.oauthRegisterRate, durationSeconds: 3600 });
  return {
    mode: 'built-in',
    store,
    build: (port) =>
      createOAuthServer({
        ...parts,
        publicUrl: publicOrigin(settings, port)!,
        key,
        ...(settings.oauthKeyPrevious ? { previousKey: settings.oauthKeyPrevious } : {}),
        accessTtlMs: settings.oauthTokenTtlMs,
        grantTtlMs: settings.oauthGrantTtlMs,
        refreshGraceMs: settings.oauthRefreshGraceMs,
        allowLoopbackMetadata: settings.oauthAllowLoopbackMetadata,
        store,
        registerLimiter,
        now: Date.now,
      }),
  };
}

function externalSetup(settings: Settings, provider: ProviderMetadata, logger: Logger): OAuthSetup {
  const roleRule =
    settings.oauthRoleClaim === undefined ? undefined : { claim: settings.oauthRoleClaim, ...(settings.oauthRoleMap ? { map: settings.oauthRoleMap } : {}) };
  return {
    mode: 'external',
    build: (port) =>
      createExternalProvider({
        publicUrl: publicOrigin(settings, port)!,
        issuer: provider.issuer,
        jwksUri: provider.jwksUri,
        audiences: settings.oauthAudience ?? [],
        requiredScope: settings.oauthRequiredScope,
        ...(roleRule ? { roleRule } : {}),
        defaultRole: settings.defaultRole,
        jwksCooldownMs: settings.oauthJwksCooldownMs,
        logger,
      }),
  };
}
