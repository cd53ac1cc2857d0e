/**
 * What the request pipeline hands the transports once every check passed: the one kind of
 * request a transport handler takes.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/bearer.js';
import type { CommandSpec } from '../commands/types.js';
import type { Endpoint } from '../http/routes.js';

export interface RoutedRequest {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  /** The whitelist entry the URL named. */
  readonly spec: CommandSpec;
  readonly endpoint: Endpoint;
  readonly principal: Principal;
  /** `?sessionId=` on SSE message POSTs, the `Mcp-Session-Id` header on Streamable requests. */
  readonly sessionId: string | undefined;
  /** The parsed JSON body of a POST; undefined otherwise. */
  readonly body: unknown;
  /**
   * OAuth: env values sealed into the caller's grant at consent. They join the request's
   * ENV_* headers and pass the same validation (a name in both is refused as a duplicate).
   */
  readonly grantEnv?: Readonly<Record<string, string>>;
}
