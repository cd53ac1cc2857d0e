/**
 * Redirect URIs: which ones a client may register, and whether the one an authorization
 * request names is registered. Matching is exact string comparison, with one exception
 * (RFC 8252 §7.3): for an http loopback URI (127.0.0.1, [::1], localhost) any port matches,
 * since a native app gets its port from the system at run time; scheme, host, path and
 * query must still be identical.
 */

const LOOPBACK_HOSTS = new Set(['127.0.0.1', '[::1]', 'localhost']);
/** Schemes that never take a browser back to an application. */
const REFUSED_SCHEMES = new Set(['javascript:', 'data:', 'vbscript:', 'file:', 'about:', 'blob:', 'ftp:', 'ws:', 'wss:']);

function parse(uri: string): URL | undefined {
  try {
    return new URL(uri);
  } catch {
    return undefined;
  }
}

/** True for `http://127.0.0.1…`, `http://[::1]…` and `http://localhost…`. */
export function isLoopbackRedirect(uri: string): boolean {
  const url = parse(uri);
  return url !== undefined && url.protocol === 'http:' && LOOPBACK_HOSTS.has(url.hostname);
}

/**
 * Why `uri` may not be registered, or undefined: https, http on a loopback host, or an
 * application's own scheme (`com.example.app:/callback`); never a fragment.
 */
export function redirectUriProblem(uri: unknown): string | undefined {
  if (typeof uri !== 'string' || uri.length === 0 || uri.length > 512) return 'each redirect URI must be a string of 1-512 characters';
  const url = parse(uri);
  if (!url) return 'a redirect URI is not an absolute URI';
  if (uri.includes('#')) return 'a redirect URI must not have a fragment';
  if (url.protocol === 'https:') return undefined;
  if (url.protocol === 'http:')
    return isLoopbackRedirect(uri) ? undefined : 'an http redirect URI must be on a loopback host (127.0.0.1, [::1] or localhost); use https';
  if (REFUSED_SCHEMES.has(url.protocol)) return `the ${url.protocol} scheme cannot be a redirect URI`;
  return undefined;
}

/** True when `presented` is one of `registered` (exactly, or by the loopback-port rule). */
export function redirectMatches(registered: readonly string[], presented: string): boolean {
  if (registered.includes(presented)) return true;
  if (!isLoopbackRedirect(presented)) return false;
  const asked = parse(presented)!;
  return registered.some((candidate) => {
    if (!isLoopbackRedirect(candidate)) return false;
    const known = parse(candidate)!;
    return (
      known.hostname === asked.hostname &&
      known.pathname === asked.pathname &&
      known.search === asked.search &&
      known.username === asked.username &&
      known.password === asked.password
    );
  });
}

/** How the consent page names where a redirect goes: `https://host` or the application scheme. */
export function redirectTarget(uri: string): string {
  const url = parse(uri);
  if (!url) return uri;
  return url.protocol === 'http:' || url.protocol === 'https:' ? `${url.protocol}//${url.host}` : `${url.protocol} (an application on this device)`;
}
