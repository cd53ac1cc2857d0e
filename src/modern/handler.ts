/**
 * Modern (2026-07-28) requests on `/<key>/mcp`: stateless, each carrying its own envelope.
 * After validation, `server/discover` is answered from what the server behind the key told
 * the gateway in its handshake (capabilities translated, after the caller's policy),
 * `subscriptions/listen` opens a listen stream, the legacy-only methods are refused, and
 * every other request goes to the caller's conversation (src/modern/conversations.ts).
 */
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import { kindOf } from '../bridge/jsonrpc.js';
import { WardenError } from '../errors.js';
import { writeError } from '../http/respond.js';
import type { CompiledPolicy } from '../policy/compile.js';
import { mayUseAny } from '../policy/engine.js';
import type { RoutedRequest } from '../transports/routed.js';
import type { Conversations } from './conversations.js';
import { LEGACY_ONLY, META, SUPPORTED_VERSIONS } from './protocol.js';
import { headerParamsOf, validateModern, type HeaderParam } from './validate.js';

type Bag = Record<string, unknown>;

export interface ModernHandlerDeps {
  readonly conversations: Conversations;
  /** The tool policy in force, if any. */
  readonly policy: () => CompiledPolicy | undefined;
  /** On Fly.io: the answer that sends a request to the machine of its conversation (src/fly/router.ts). */
  readonly route?: (request: RoutedRequest, conversationKey: () => string) => WardenError | undefined;
}

/** Capabilities of the 2025 era that have no place in a 2026-07-28 answer. */
const LEGACY_CAPABILITIES = ['tasks'];

export class ModernHandler {
  /** Per whitelist key, per tool: the `Mcp-Param-*` headers its input schema declares (from the last tools/list). */
  private readonly headerParams = new Map<string, Map<string, HeaderParam[]>>();

  constructor(private readonly deps: ModernHandlerDeps) {}

  /** Remembers the tools a server listed, for the `Mcp-Param-*` checks of later calls. */
  toolsListed(key: string, tools: unknown): void {
    if (!Array.isArray(tools)) return;
    const byTool = this.headerParams.get(key) ?? new Map<string, HeaderParam[]>();
    for (const tool of tools.slice(0, 1000)) {
      const name = (tool as Bag | null)?.name;
      if (typeof name === 'string') byTool.set(name, headerParamsOf((tool as Bag).inputSchema));
    }
    this.headerParams.set(key, byTool);
  }

  async handle(request: RoutedRequest): Promise<void> {
    const { req, res, spec } = request;
    const kind = kindOf(request.body);
    if (kind !== 'request' && kind !== 'notification')
      throw new WardenError('bad_request', 'Invalid Request: a 2026-07-28 POST carries one request or one notification');
    const message = request.body as Bag & { method: string; id?: RequestId; params?: Bag };
    const id = message.id ?? null;
    const elsewhere = this.deps.route?.(request, () => this.deps.conversations.keyOf(request));
    if (elsewhere) return writeError(res, elsewhere, id);
    let envelope;
    try {
      envelope = validateModern(message, req.headers, (tool) => this.headerParams.get(spec.key)?.get(tool));
    } catch (error) {
      return writeError(res, error, id);
    }
    if (message.id === undefined) {
      if (message.method === 'notifications/cancelled') this.deps.conversations.find(request)?.transport.cancelled(message.params?.requestId);
      res.writeHead(202).end();
      return;
    }
    const withId = message as Bag & { id: RequestId; method: string };
    if (LEGACY_ONLY.has(message.method)) {
      return writeError(res, new WardenError('method_not_found', `${message.method} is not part of protocol revision 2026-07-28`), message.id);
    }
    try {
      if (message.method === 'server/discover') return await this.discover(request, withId.id);
      const conversation = await this.deps.conversations.get(request);
      if (message.method === 'subscriptions/listen') return conversation.transport.listen(withId as never, envelope, res);
      conversation.transport.request({ message: withId as never, envelope, res });
    } catch (error) {
      writeError(res, error, message.id);
    }
  }

  /** `server/discover`: the versions served, and the capabilities of the server behind the key for this caller. */
  private async discover(request: RoutedRequest, id: RequestId): Promise<void> {
    const facts = this.deps.conversations.factsOf(request.spec.key) ?? (await this.deps.conversations.get(request)).transport.facts;
    const policy = this.deps.policy();
    const capabilities = { ...(facts?.capabilities ?? {}) };
    for (const key of LEGACY_CAPABILITIES) delete capabilities[key];
    if (policy) {
      for (const kind of ['tools', 'prompts', 'resources'] as const) {
        if (!mayUseAny(policy, kind, request.principal.role, request.spec.key)) delete capabilities[kind];
      }
    }
    const serverInfo = facts?.serverInfo;
    const result = {
      resultType: 'complete',
      supportedVersions: [...SUPPORTED_VERSIONS],
      capabilities,
      ...(typeof facts?.instructions === 'string' ? { instructions: facts.instructions } : {}),
      ttlMs: 0,
      cacheScope: policy ? 'private' : 'public',
      ...(serverInfo ? { _meta: { [META.serverInfo]: serverInfo } } : {}),
    };
    request.res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ jsonrpc: '2.0', id, result } as JSONRPCMessage));
  }
}
