/**
 * The resource-server side of OAuth (RFC 9728, RFC 6750): each MCP endpoint is its own
 * protected resource, named after the configured public origin (never a request's Host):
 * `{public}/<key>/mcp` and `{public}/<key>/sse` (the SSE message path `/<key>/messages`
 * belongs to `/<key>/sse`). This module builds their identifiers, their metadata documents
 * and the `WWW-Authenticate` challenges that point at them, and reads a `resource` a client
 * names back into a key.
 */
import { decodeCommandSegment } from '../commands/registry.js';
import type { Endpoint, Route } from '../http/routes.js';

/** The scope every MCP request needs. */
export const MCP_SCOPE = 'mcp';
/** The scope that asks for a refresh token; never challenged for (it is not the resource's). */
export const OFFLINE_SCOPE = 'offline_access';

export type ResourceEndpoint = 'mcp' | 'sse';

/** A resource the gateway serves: the key (decoded), its raw path segment, and the endpoint. */
export interface ResourceTarget {
  readonly key: string;
  readonly segment: string;
  readonly endpoint: ResourceEndpoint;
}

/** What a challenge reports beyond "authenticate": a bad token, or a missing scope. */
export interface ChallengeError {
  readonly error: 'invalid_token' | 'insufficient_scope';
  /** Plain words; quotes, backslashes and control characters are dropped. */
  readonly description: string;
}

const RESOURCE_PATH = /^\/([^/]+)\/(mcp|sse)$/;

/**
 * Printable ASCII without `"`, `\` or `=`: safe inside a quoted auth-param, and never
 * mistaken for another parameter by a client that searches the header for `name=`.
 */
function paramSafe(text: string): string {
  return text.replace(/[^\x20-\x7e]|["\\=]/g, '').slice(0, 200);
}

export class ResourceServer {
  /**
   * @param publicOrigin the gateway's external origin, without a trailing slash.
   * @param scope the scope every request needs, named in challenges and metadata; empty: none.
   */
  constructor(
    readonly publicOrigin: string,
    readonly scope: string = MCP_SCOPE,
  ) {}

  /** The resource a message route belongs to (`messages` is the SSE endpoint's). */
  static endpointOf(endpoint: Endpoint): ResourceEndpoint {
    return endpoint === 'mcp' ? 'mcp' : 'sse';
  }

  /** `{public}/<segment>/<endpoint>`: the segment as the client's URL carried it. */
  resourceUrl(segment: string, endpoint: ResourceEndpoint): string {
    return `${this.publicOrigin}/${segment}/${endpoint}`;
  }

  /** Where that resource's metadata document is served (path-suffixed, RFC 9728 §3.1). */
  metadataUrl(segment: string, endpoint: ResourceEndpoint): string {
    return `${this.publicOrigin}/.well-known/oauth-protected-resource/${segment}/${endpoint}`;
  }

  /** The metadata document of one resource. */
  metadata(segment: string, endpoint: ResourceEndpoint, issuer: string): Record<string, unknown> {
    const key = decodeCommandSegment(segment) ?? segment;
    return {
      resource: this.resourceUrl(segment, endpoint),
      authorization_servers: [issuer],
      ...(this.scope === '' ? {} : { scopes_supported: [this.scope] }),
      bearer_methods_supported: ['header'],
      resource_name: `mcp-warden: ${key} (${endpoint === 'mcp' ? 'Streamable HTTP' : 'SSE'})`,
    };
  }

  /** Reads a well-known path `/.well-known/oauth-protected-resource/<segment>/<endpoint>`. */
  static metadataPath(path: string): { segment: string; endpoint: ResourceEndpoint } | undefined {
    const prefix = '/.well-known/oauth-protected-resource';
    if (!path.startsWith(`${prefix}/`)) return undefined;
    const match = RESOURCE_PATH.exec(path.slice(prefix.length));
    if (!match || decodeCommandSegment(match[1]!) === undefined) return undefined;
    return { segment: match[1]!, endpoint: match[2] as ResourceEndpoint };
  }

  /**
   * The target a `resource` parameter names, or undefined when it is not one of this
   * gateway's resources. Scheme and host compare without regard to case and a trailing
   * slash is ignored; a fragment, a query or another origin never match.
   */
  parse(resource: string): ResourceTarget | undefined {
    let url: URL;
    try {
      url = new URL(resource);
    } catch {
      return undefined;
    }
    if (url.hash !== '' || resource.includes('#') || url.search !== '' || url.username !== '' || url.password !== '') return undefined;
    if (url.origin !== this.publicOrigin) return undefined;
    const match = RESOURCE_PATH.exec(url.pathname.replace(/\/$/, ''));
    const key = match ? decodeCommandSegment(match[1]!) : undefined;
    if (!match || key === undefined) return undefined;
    return { key, segment: match[1]!, endpoint: match[2] as ResourceEndpoint };
  }

  /**
   * The `WWW-Authenticate` value for a refused request on `route`: where its metadata is and
   * which scope it needs, plus the error when a token was presented. A path that is no MCP
   * endpoint has no metadata: it gets the plain challenge.
   */
  challenge(route: Route, error?: ChallengeError): string {
    const parts = ['realm="mcp-warden"'];
    if (route.keySegment !== undefined && route.endpoint !== undefined) {
      parts.push(`resource_metadata="${this.metadataUrl(route.keySegment, ResourceServer.endpointOf(route.endpoint))}"`);
    }
    if (this.scope !== '') parts.push(`scope="${paramSafe(this.scope)}"`);
    if (error) parts.push(`error="${error.error}"`, `error_description="${paramSafe(error.description)}"`);
    return `Bearer ${parts.join(', ')}`;
  }
}
