/**
 * OAuth from settings: whether it is on (WARDEN_OAUTH_KEY), the public origin it names itself
 * after, where grants live (the rate limiter's Redis when there is one, else this process),
 * and the server for the port actually bound (the origin of a loopback gateway depends on it).
 */
import type { Settings } from '../config/settings.js';
import { isLoopbackAddress } from '../http/hostGuard.js';
import type { LimiterStore } from '../ratelimit/limiter.js';
import { RedisGrantStore } from './redisStore.js';
import { createOAuthServer, type OAuthServer, type OAuthServerOptions } from './server.js';
import { MemoryGrantStore, type GrantStore } from './store.js';

/** What the gateway hands over besides settings: everything but what settings decide. */
export type OAuthParts = Omit<OAuthServerOptions, 'publicUrl' | 'key' | 'previousKey' | 'accessTtlMs' | 'grantTtlMs' | 'refreshGraceMs' | 'allowLoopbackMetadata' | 'store' | 'registerLimiter' | 'now'>;

/** The public origin: the setting, or the loopback address bound; undefined elsewhere. */
export function publicOrigin(settings: Settings, port: number): string | undefined {
  if (settings.publicUrl) return settings.publicUrl;
  if (!isLoopbackAddress(settings.host)) return undefined;
  const host = settings.host.includes(':') && !settings.host.startsWith('[') ? `[${settings.host}]` : settings.host;
  return `http://${host}:${port}`;
}

/** @throws {TypeError} when OAuth is on but has no public origin to name itself after. */
export function checkOAuthSettings(settings: Settings): void {
  if (settings.oauthKey && !settings.publicUrl && !isLoopbackAddress(settings.host)) {
    throw new TypeError('WARDEN_OAUTH_KEY is set but --public-url (WARDEN_PUBLIC_URL) is not: OAuth names its issuer and resources after the public origin, e.g. https://app.fly.dev');
  }
}

export interface OAuthSetup {
  readonly store: GrantStore;
  /** The server for the bound port. */
  build(port: number): OAuthServer;
}

/** Undefined when OAuth is off. */
export function oauthSetup(settings: Settings, limiterStore: LimiterStore, parts: OAuthParts): OAuthSetup | undefined {
  const key = settings.oauthKey;
  if (!key) return undefined;
  const store: GrantStore = limiterStore.redis ? new RedisGrantStore(limiterStore.redis, limiterStore.keyPrefix) : new MemoryGrantStore();
  const registerLimiter = limiterStore.create('oauth-register', { points: settings.oauthRegisterRate, durationSeconds: 3600 });
  return {
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
