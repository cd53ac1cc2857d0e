/**
 * DNS-rebinding protection: the Host header must name this gateway and a browser's Origin
 * must be one the operator allowed. Non-browser clients send no Origin and pass that check.
 */
import type { IncomingMessage } from 'node:http';
import type { RequestHandler } from 'express';
import { WardenError } from '../errors.js';
import { sendError } from './respond.js';

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

/** The check alone: the error a request's Host or Origin earns, or undefined when it passes. */
export function hostCheck(options: HostGuardOptions): (req: IncomingMessage) => WardenError | undefined {
  const hosts = new Set(options.allowedHosts.map((h) => h.toLowerCase()));
  const origins = new Set(options.allowedOrigins.map((o) => o.toLowerCase().replace(/\/$/, '')));
  const anyOrigin = origins.has('*');
  return (req) => {
    if (hosts.size > 0) {
      const host = (req.headers.host ?? '').toLowerCase();
      if (!hosts.has(host) && !hosts.has(hostnameOf(host))) return new WardenError('forbidden_host', 'Host header is not allowed');
    }
    const origin = req.headers.origin;
    if (origin !== undefined && !anyOrigin && !origins.has(origin.toLowerCase())) return new WardenError('forbidden_origin', 'Origin is not allowed');
    return undefined;
  };
}

export function hostGuard(options: HostGuardOptions): RequestHandler {
  const check = hostCheck(options);
  return (req, res, next) => {
    const error = check(req);
    if (error) sendError(res, error);
    else next();
  };
}
