/**
 * Routing between the machines of a Fly.io app, with what Fly provides (`fly-replay`):
 * - a request naming a session (SSE `POST /messages?sessionId=`, Streamable `Mcp-Session-Id`)
 *   is replayed to the machine its id names, before it is charged or its body read; an id
 *   naming a machine that has left gets `404 session_not_found`, so the client starts over;
 * - a 2026-07-28 request, which carries no session, goes to the owner of its conversation
 *   (principal, key, env fingerprint) by rendezvous hashing over the live machines; the retry
 *   of a held request goes to the machine its sealed `requestState` names, while it is live;
 * - a draining machine sends a request that would open a new session elsewhere.
 * Forged or tampered ids are left alone: they are unknown sessions, as anywhere.
 */
import { WardenError } from '../errors.js';
import type { RequestContext } from '../http/checks.js';
import { sessionIdOf } from '../http/routes.js';
import type { RequestStateSealer } from '../modern/requestState.js';
import type { RoutedRequest } from '../transports/routed.js';
import type { MachineSource } from './machines.js';
import { ELSEWHERE, replayTo, unreplayable, wasReplayed } from './replay.js';
import { ownerOf } from './rendezvous.js';
import type { MachineSessionIds, MintSessionId } from './sessionIds.js';

export interface FlyRouterOptions {
  /** Mints and reads this machine's session ids (its machine id is this machine's). */
  readonly sessionIds: MachineSessionIds;
  readonly machines: MachineSource;
  /** Opens a sealed `requestState`, to read the machine that holds its request. */
  readonly sealer: RequestStateSealer;
}

export class FlyRouter {
  /** How this machine's session ids begin (machine ids hold no dot). */
  private readonly ownPrefix: string;

  constructor(private readonly options: FlyRouterOptions) {
    this.ownPrefix = `${options.sessionIds.machine}.`;
  }

  /** This machine's id. */
  get self(): string {
    return this.options.sessionIds.machine;
  }

  /** New session ids, naming this machine. */
  get mintSessionId(): MintSessionId {
    return this.options.sessionIds.mint;
  }

  start(): void {
    this.options.machines.start?.();
  }

  close(): void {
    this.options.machines.close?.();
  }

  /** The pipeline check (after the credentials, before the rate limit): a session held elsewhere is replayed there. */
  readonly sessionCheck = (ctx: RequestContext): WardenError | undefined => {
    const id = sessionIdOf(ctx.route, ctx.req.headers);
    // An id of this machine is served here whether or not its mac holds (a forged one names no session).
    if (id === undefined || id.startsWith(this.ownPrefix) || wasReplayed(ctx.req)) return undefined;
    const reading = this.options.sessionIds.read(id);
    if (reading.kind !== 'bound') return undefined;
    const live = this.options.machines.current();
    if (live && !live.includes(reading.machine)) {
      return new WardenError('session_not_found', 'Session not found: the machine that held it has left; start a new session');
    }
    return unreplayable(ctx.req) ?? replayTo(reading.machine, 'this session');
  };

  /**
   * Where a 2026-07-28 request belongs: undefined to serve it here, else the answer that
   * sends it on (or says it cannot be). `conversationKey` names its conversation; when it
   * throws (its env would be refused), the request is served here, which refuses it.
   */
  readonly modern = ({ req, body }: RoutedRequest, conversationKey: () => string): WardenError | undefined => {
    const live = this.options.machines.current();
    if (!live || wasReplayed(req)) return undefined;
    const held = this.heldBy(body);
    let target: string | undefined;
    if (held !== undefined && live.includes(held)) target = held;
    else {
      try {
        target = ownerOf(conversationKey(), live);
      } catch {
        return undefined;
      }
    }
    if (target === undefined || target === this.self) return undefined;
    return unreplayable(req) ?? replayTo(target, 'this conversation');
  };

  /** Extra headers of a draining machine's 503: `fly-replay: elsewhere=true` for a request that opens a new session. */
  readonly drainHeaders = (ctx: RequestContext): Readonly<Record<string, string>> | undefined => {
    const { req, route } = ctx;
    if (wasReplayed(req) || unreplayable(req)) return undefined;
    const sse = route.endpoint === 'sse' && req.method === 'GET';
    // Without a session id, a POST to /mcp is an initialize or a 2026-07-28 request.
    const mcp = route.endpoint === 'mcp' && req.method === 'POST' && req.headers['mcp-session-id'] === undefined;
    return sse || mcp ? ELSEWHERE : undefined;
  };

  /** The machine a retry's sealed requestState names, if any. */
  private heldBy(body: unknown): string | undefined {
    const state = (body as { params?: { requestState?: unknown } } | null)?.params?.requestState;
    return state === undefined ? undefined : this.options.sealer.open(state)?.machine;
  }
}
