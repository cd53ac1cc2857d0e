/**
 * The protected resource metadata routes (RFC 9728), the same whoever issues the tokens:
 * `/.well-known/oauth-protected-resource/<key>/mcp` (and `/sse`) describe one endpoint and
 * name the authorization server; the root document answers 404, since tokens are issued per
 * endpoint and there is no gateway-wide resource to describe.
 */
import type { ServerResponse } from 'node:http';
import { ResourceServer } from './resource.js';
import { OAuthError, writeJson, writeOAuthError } from './respond.js';

const PRM_ROOT = '/.well-known/oauth-protected-resource';

/** Answers a GET of `path` when it is a metadata route; false otherwise. */
export function answerResourceMetadata(res: ServerResponse, path: string, resource: ResourceServer, issuer: string): boolean {
  const prm = ResourceServer.metadataPath(path);
  if (prm) {
    writeJson(res, 200, resource.metadata(prm.segment, prm.endpoint, issuer), { 'Cache-Control': 'public, max-age=300' });
    return true;
  }
  if (path === PRM_ROOT || path === `${PRM_ROOT}/`) {
    writeOAuthError(res, new OAuthError('invalid_request', `each MCP endpoint is its own resource: see ${PRM_ROOT}/<key>/mcp (or /sse)`, 404));
    return true;
  }
  return false;
}
