/**
 * The 2026-07-28 revision as the gateway meets it: the versions each era serves, the
 * reserved `_meta` keys of the per-request envelope, and how a request is told apart
 * (a request is modern when its `params._meta` carries a protocol version claim).
 */
import { SUPPORTED_PROTOCOL_VERSIONS } from '@modelcontextprotocol/sdk/types.js';

export const MODERN_VERSION = '2026-07-28';
/** Versions the gateway serves on `/<key>/mcp`: the modern one, then the legacy ones. */
export const SUPPORTED_VERSIONS: readonly string[] = [MODERN_VERSION, ...SUPPORTED_PROTOCOL_VERSIONS];

export const META = {
  protocolVersion: 'io.modelcontextprotocol/protocolVersion',
  clientInfo: 'io.modelcontextprotocol/clientInfo',
  clientCapabilities: 'io.modelcontextprotocol/clientCapabilities',
  logLevel: 'io.modelcontextprotocol/logLevel',
  serverInfo: 'io.modelcontextprotocol/serverInfo',
  subscriptionId: 'io.modelcontextprotocol/subscriptionId',
} as const;

/** The envelope keys a request carries; the gateway consumes them (a legacy child never sees them). */
export const ENVELOPE_KEYS: readonly string[] = [META.protocolVersion, META.clientInfo, META.clientCapabilities, META.logLevel];

/** RFC 5424 severities, least severe first (the order `logLevel` filters by). */
export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** The methods whose results are cacheable (they carry `ttlMs` and `cacheScope`). */
export const CACHEABLE: ReadonlySet<string> = new Set([
  'server/discover',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);
/** The methods that may answer `input_required` (multi round-trip requests). */
export const MRTR_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);
/** Legacy-only methods a modern request may not use. */
export const LEGACY_ONLY: ReadonlySet<string> = new Set(['initialize', 'ping', 'logging/setLevel', 'resources/subscribe', 'resources/unsubscribe']);

type Bag = Record<string, unknown>;

function isObject(value: unknown): value is Bag {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The request's `params._meta`, when it is an object. */
export function metaOf(message: unknown): Bag | undefined {
  if (!isObject(message) || !isObject(message.params)) return undefined;
  const meta = message.params._meta;
  return isObject(meta) ? meta : undefined;
}

/** True when the message claims the modern era (its `_meta` names a protocol version). */
export function claimsModern(message: unknown): boolean {
  const meta = metaOf(message);
  return meta !== undefined && Object.hasOwn(meta, META.protocolVersion);
}

/** True when a POST body is a batch with a modern request in it (not allowed). */
export function batchClaimsModern(body: unknown): boolean {
  return Array.isArray(body) && body.some(claimsModern);
}

/** `params` without the envelope keys (and without `_meta` when nothing else is left in it). */
export function withoutEnvelope(params: Bag | undefined): Bag | undefined {
  if (!params || !isObject(params._meta)) return params;
  const meta = { ...params._meta };
  for (const key of ENVELOPE_KEYS) delete meta[key];
  const { _meta: _dropped, ...rest } = params;
  return Object.keys(meta).length > 0 ? { ...rest, _meta: meta } : rest;
}
