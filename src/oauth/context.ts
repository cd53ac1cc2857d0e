/**
 * What the authorization server's endpoints share: the issuer, the sealing, the grant store,
 * the clients, the whitelist (a resource names a key), the static credentials a person
 * enters at consent, the failure throttle, and the audit trail.
 */
import type { AuditRecorder } from '../audit/recorder.js';
import type { TokenVerifier } from '../auth/bearer.js';
import type { EnvMode } from '../commands/envPolicy.js';
import type { CommandRegistry } from '../commands/registry.js';
import type { AddressOf } from '../http/clientAddress.js';
import type { Logger } from '../logging/logger.js';
import type { Limiter } from '../ratelimit/limiter.js';
import type { ClientDirectory } from './clients.js';
import type { GrantSeals } from './grants.js';
import type { Registrations } from './registration.js';
import type { ResourceServer } from './resource.js';
import type { Sealer } from './seal.js';
import type { GrantStore } from './store.js';

export interface AuthServerContext {
  /** The public origin, exactly as the metadata's `issuer` and every `iss` parameter. */
  readonly issuer: string;
  readonly resource: ResourceServer;
  readonly sealer: Sealer;
  readonly seals: GrantSeals;
  readonly store: GrantStore;
  readonly clients: ClientDirectory;
  readonly registrations: Registrations;
  readonly registry: CommandRegistry;
  /** The shared secret and client tokens: what a person may enter at consent. */
  readonly verifyCredential: TokenVerifier;
  /** Admin tokens, refused at consent by name. */
  readonly verifyAdmin: TokenVerifier | undefined;
  /** Failed logins per address (the MCP endpoints' throttle). */
  readonly throttle?: { check(address: string): Promise<void>; fail(address: string): Promise<void> };
  /** Registrations per address. */
  readonly registerLimiter?: Limiter;
  readonly addressOf: AddressOf;
  readonly audit: AuditRecorder;
  readonly logger: Logger;
  readonly envMode: EnvMode | undefined;
  /** How long a just-rotated refresh token still gets the same answer, ms. */
  readonly refreshGraceMs: number;
  readonly now: () => number;
}

/** How long a consent form may be left open, ms. */
export const CONSENT_TTL_MS = 10 * 60_000;
/** Largest form body the endpoints read. */
export const FORM_LIMIT_BYTES = 64 * 1024;
/** Most bytes of env values (names and values) one grant may carry: they travel in every token. */
export const GRANT_ENV_LIMIT_BYTES = 4096;
