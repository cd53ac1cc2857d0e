/**
 * The authorization server's metadata (RFC 8414), served at the origin root's
 * `/.well-known/oauth-authorization-server` since the issuer has no path. The issuer is the
 * public origin with no trailing slash, character for character what every authorization
 * response's `iss` and every resource document's `authorization_servers` say.
 */
import { MCP_SCOPE, OFFLINE_SCOPE } from './resource.js';

export const AUTH_METHODS = ['none', 'client_secret_post', 'client_secret_basic'] as const;

export function authorizationServerMetadata(issuer: string): Record<string, unknown> {
  return {
    issuer,
    authorization_endpoint: `${issuer}/authorize`,
    token_endpoint: `${issuer}/token`,
    registration_endpoint: `${issuer}/register`,
    revocation_endpoint: `${issuer}/revoke`,
    response_types_supported: ['code'],
    response_modes_supported: ['query'],
    grant_types_supported: ['authorization_code', 'refresh_token'],
    code_challenge_methods_supported: ['S256'],
    token_endpoint_auth_methods_supported: [...AUTH_METHODS],
    revocation_endpoint_auth_methods_supported: [...AUTH_METHODS],
    scopes_supported: [MCP_SCOPE, OFFLINE_SCOPE],
    client_id_metadata_document_supported: true,
    authorization_response_iss_parameter_supported: true,
  };
}
