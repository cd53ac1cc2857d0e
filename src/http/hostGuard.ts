/**
 * DNS-rebinding protection: the Host header must name this gateway and a browser's Origin
 * must be one the operator allowed. Non-browser clients send no Origin and pass that check.
 */
import type { IncomingMessage } from 'node:http';
import { WardenError } from '../errors.js';
import { LogThrottle, type Logger } from '../logging/logger.js';

export interface HostGuardOptions {
  /**
   * Accepted Host header values: a hostname (any port) or host:port. Empty: no Host check.
   * @default loopback names when bound to loopback, otherwise empty
   */
  readonly allowedHosts: readonly string[];
  /** Accepted Origin values (scheme://host[:port]); `*` accepts any. @default loopback origins on the gateway's port */
  readonly allowedOrigins: readonly string[];
}

export const LOOPBACK_HOSTNAMES = ['localhost', '127.0.0.1', '[::1]'] as const;

export function isLoopbackAddress(host: string): boolean {
  return host === 'localhost' || host === '::1' || host === '[::1]' || /^127\.\d+\.\d+\.\d+$/.test(host);
}

/** Defaults for a gateway bound to `host`:`port`. */
export function defaultHostGuard(host: string, port: number): HostGuardOptions {
  if (!isLoopbackAddress(host)) return { allowedHosts: [], allowedOrigins: [] };
  return {
    allowedHosts: [...LOOPBACK_HOSTNAMES],
    allowedOrigins: LOOPBACK_HOSTNAMES.map((name) => `http://${name}:${port}`),
  };
}

function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) {
    const end = hostHeader.indexOf(']');
    return end === -1 ? hostHeader : hostHeader.slice(0, end + 1);
  }
  const colon = hostHeader.lastIndexOf(':');
  return colon === -1 ? hostHeader : hostHeader.slice(0, colon);
}

/** A header value fit to quote back: printable ASCII, at most 100 characters; else undefined. */
function quotable(value: string): string | undefined {
  return /^[\x21-\x7e]{1,100}$/.test(value) ? value : undefined;
}

function hostRefusal(host: string): WardenError {
  const shown = quotable(host);
  return new WardenError(
    'forbidden_host',
    `Host header ${shown === undefined ? '' : `"${shown}" `}is not allowed; an admin can add it to --allowed-hosts (WARDEN_ALLOWED_HOSTS)`,
    { data: { setting: 'WARDEN_ALLOWED_HOSTS' } },
  );
}

function originRefusal(origin: string): WardenError {
  const shown = quotable(origin);
  return new WardenError(
    'forbidden_origin',
    `Origin ${shown === undefined ? '' : `"${shown}" `}is not allowed; an admin can add it to --allowed-origins (WARDEN_ALLOWED_ORIGINS)`,
    { data: { setting: 'WARDEN_ALLOWED_ORIGINS' } },
  );
}

/**
 * The check: the error a request's Host or Origin earns, or undefined when it passes. Each
 * refusal is logged (throttled) with what was refused, when a logger is given.
 */
export function hostCheck(options: HostGuardOptions, logger?: Logger): (req: IncomingMessage) => WardenError | undefined {
  const check = hostOriginError(options);
  const throttle = new LogThrottle(10, 60_000);
  return (req) => {
    const error = check(req);
    if (error && logger && throttle.allow((n) => logger.warn('Host/Origin refusals suppressed', { count: n }))) {
      logger.warn(error.message, { host: quotable(req.headers.host ?? ''), origin: quotable(req.headers.origin ?? '') });
    }
    return error;
  };
}

function hostOriginError(options: HostGuardOptions): (req: IncomingMessage) => WardenError | undefined {
  const hosts = new Set(options.allowedHosts.map((h) => h.toLowerCase()));
  const origins = new Set(options.allowedOrigins.map((o) => o.toLowerCase().replace(/\/$/, '')));
  const anyOrigin = origins.has('*');
  return (req) => {
    if (hosts.size > 0) {
      const host = (req.headers.host ?? '').toLowerCase();
      if (!hosts.has(host) && !hosts.has(hostnameOf(host))) return hostRefusal(req.headers.host ?? '');
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !anyOrigin && !origins.has(origin.toLowerCase())) return originRefusal(origin);
    return undefined;
  };
}
