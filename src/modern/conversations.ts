/**
 * Which child serves a modern request, which carries no session: one conversation per
 * (principal, whitelist key, env fingerprint), the way a desktop app runs one server process
 * for all its chats. It is created on first use (from the warm pool when it can), reused
 * while active, counted against the same limits as sessions, and reaped when idle (nothing
 * in flight, no listen open, no request waiting for input). A conversation is never shared
 * between principals. The env fingerprint is an HMAC with a deployment key, never a plain
 * hash of secret values, and a principal gets at most `maxEnvVariants` conversations per key.
 */
import { createHmac } from 'node:crypto';
import type { Principal } from '../auth/bearer.js';
import { envFingerprint, requestEnvEntries, validateEnvHeaders } from '../commands/env.js';
import { LimitReachedError } from '../errors.js';
import { clientKey } from '../http/clientAddress.js';
import type { RoutedRequest } from '../transports/routed.js';
import type { SessionFactory } from '../transports/sessionFactory.js';
import type { Session } from '../transports/sessions.js';
import type { CommandSpec } from '../commands/types.js';
import { ModernClientPort, type ModernPortOptions, type ServerFacts } from './port.js';

/** A key for one purpose, derived from the deployment's shared secret (the same on every machine). */
export function deploymentKey(secret: string, purpose: string): Buffer {
  return createHmac('sha256', secret).update(`mcp-warden ${purpose}`).digest();
}

interface ConversationIdent {
  readonly id: string;
  readonly principalKey: string;
  readonly accepted: Readonly<Record<string, string>>;
}

export interface ConversationOptions {
  /** Conversations one principal may hold per key with different env. @default 4 */
  readonly maxEnvVariants: number;
  readonly fingerprintKey: Buffer;
  /** Options of each conversation's client port (principal and scope are added per conversation). */
  readonly port: Omit<ModernPortOptions, 'principalKey' | 'cacheScope' | 'onToolsListed'>;
  /** True while a tool policy is loaded (answers then depend on the caller's role). */
  readonly policyActive: () => boolean;
  /** Told of every tools/list result a key's server gave (for the Mcp-Param-* checks). */
  readonly onToolsListed?: (key: string, tools: unknown) => void;
  /** What the era probe learnt of an entry's server: `modern` ones get requests passed through. */
  readonly eraOf: (spec: CommandSpec) => { readonly era: 'modern' | 'legacy'; readonly discover?: Record<string, unknown> } | undefined;
}

export class Conversations {
  private readonly live = new Map<string, Session<'modern'>>();
  private readonly opening = new Map<string, Promise<Session<'modern'>>>();
  /** The env fingerprint of a request without env (computed once). */
  private noEnv: string | undefined;
  private readonly idents = new WeakMap<RoutedRequest, ConversationIdent>();
  /** What each key's server said of itself, once one of its children was reached (server/discover answers from it). */
  private readonly facts = new Map<string, ServerFacts>();

  constructor(
    private readonly factory: SessionFactory,
    private readonly options: ConversationOptions,
  ) {}

  /** What `key`'s server said of itself, when known. */
  factsOf(key: string): ServerFacts | undefined {
    return this.facts.get(key);
  }

  /** The conversation for this request's principal, key and env, if one is open. */
  find(request: RoutedRequest): Session<'modern'> | undefined {
    try {
      return this.live.get(this.idOf(request).id);
    } catch {
      return undefined; // env headers that would be refused: no conversation has them
    }
  }

  /** The conversation for this request's principal, key and env: found, or opened (with the handshake). */
  async get(request: RoutedRequest): Promise<Session<'modern'>> {
    const { id, principalKey, accepted } = this.idOf(request);
    const found = this.live.get(id);
    if (found) return found;
    const pending = this.opening.get(id);
    if (pending) return pending;
    this.checkVariants(principalKey, request.spec.key);
    const envDependent = Object.keys(accepted).length > 0;
    const open = this.open(request, request.principal, id, envDependent).finally(() => this.opening.delete(id));
    this.opening.set(id, open);
    return open;
  }

  /**
   * The name of this request's conversation (principal, key, role, env fingerprint): a caller
   * whose role changed gets a conversation under the new role's policy. Throws when its env
   * would be refused.
   */
  keyOf(request: RoutedRequest): string {
    return this.idOf(request).id;
  }

  /** Worked out once per request (the Fly router asks before the handler does). */
  private idOf(request: RoutedRequest): ConversationIdent {
    let ident = this.idents.get(request);
    if (ident) return ident;
    const accepted = validateEnvHeaders(requestEnvEntries(request.req.headersDistinct, request.grantEnv), request.spec, { mode: this.factory.limits.envMode });
    const principalKey = clientKey(request.principal);
    ident = { id: `${principalKey}\u0000${request.spec.key}\u0000${request.principal.role}\u0000${this.fingerprint(accepted)}`, principalKey, accepted };
    this.idents.set(request, ident);
    return ident;
  }

  private async open(request: RoutedRequest, principal: Principal, id: string, envDependent: boolean): Promise<Session<'modern'>> {
    const port = new ModernClientPort({
      ...this.options.port,
      principalKey: clientKey(principal),
      cacheScope: () => (envDependent || this.options.policyActive() ? 'private' : 'public'),
      onToolsListed: (tools) => this.options.onToolsListed?.(request.spec.key, tools),
    });
    const session = await this.factory.open(request, 'modern', () => port, { detached: true });
    if (!session) throw new LimitReachedError('the client left before its server started', 0, 1);
    this.live.set(id, session);
    session.bridge.onclose = chain(session.bridge.onclose, () => {
      if (this.live.get(id) === session) this.live.delete(id);
    });
    try {
      const verdict = this.options.eraOf(request.spec);
      const facts = verdict?.era === 'modern' ? port.passThrough(verdict.discover) : await port.handshake();
      this.facts.set(request.spec.key, facts);
    } catch (error) {
      await session.close('handshake failed');
      throw error;
    }
    return session;
  }

  private checkVariants(principalKey: string, key: string): void {
    const prefix = `${principalKey}\u0000${key}\u0000`;
    let count = 0;
    for (const id of [...this.live.keys(), ...this.opening.keys()]) if (id.startsWith(prefix)) count += 1;
    if (count >= this.options.maxEnvVariants) throw new LimitReachedError('maxEnvVariants', this.options.maxEnvVariants, 5, 'rate_limited');
  }

  private fingerprint(accepted: Readonly<Record<string, string>>): string {
    // Most requests carry no env: theirs is computed once.
    for (const _ in accepted) return envFingerprint(accepted, this.options.fingerprintKey);
    return (this.noEnv ??= envFingerprint({}, this.options.fingerprintKey));
  }
}

function chain(first: (() => void) | undefined, then: () => void): () => void {
  return () => {
    first?.();
    then();
  };
}
