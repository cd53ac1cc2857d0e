/**
 * Requests of live sessions whose whitelist entry was removed: the command check finds no
 * entry for their key, and asks here. A request that names a live session of exactly this
 * key, transport and principal gets the entry's last spec, so the session can finish; any
 * other request (a new session among them) stays `404 unknown_command`.
 */
import type { CommandRegistry } from '../commands/registry.js';
import type { CommandSpec } from '../commands/types.js';
import type { RequestContext } from '../http/checks.js';
import type { SessionStore } from '../transports/sessions.js';

export function retiredSpecs(registry: CommandRegistry, sessions: SessionStore): (key: string, ctx: RequestContext) => CommandSpec | undefined {
  return (key, { route, req, principal }) => {
    const spec = registry.retired(key);
    if (!spec) return undefined;
    const id = route.endpoint === 'messages' ? route.query.get('sessionId') : route.endpoint === 'mcp' ? req.headers['mcp-session-id'] : undefined;
    if (typeof id !== 'string') return undefined;
    return sessions.find(id, route.endpoint === 'messages' ? 'sse' : 'streamable', key, principal) ? spec : undefined;
  };
}
