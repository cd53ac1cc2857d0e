/**
 * Checks a modern (2026-07-28) request before anything acts on it, in the order the
 * revision's transport page gives: the headers that mirror the body must agree with it
 * (-32020), the per-request envelope must be well formed (-32602), the version must be one
 * the gateway serves (-32022, listing them), and the mirrored headers must be present:
 * `MCP-Protocol-Version` and `Mcp-Method` always, `Mcp-Name` for tools/call, prompts/get and
 * resources/read, and the `Mcp-Param-*` headers a tool's input schema declares.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { isUtf8 } from 'node:buffer';
import { WardenError } from '../errors.js';
import { LOG_LEVELS, META, MODERN_VERSION, SUPPORTED_VERSIONS, metaOf } from './protocol.js';

type Bag = Record<string, unknown>;

/** A tool argument mirrored into a header: `Mcp-Param-<header>` carries `arguments[property]`. */
export interface HeaderParam {
  readonly header: string;
  readonly property: string;
}

/** What the checks learn from a valid request's envelope. */
export interface Envelope {
  readonly version: string;
  readonly clientCapabilities: Bag;
  readonly clientInfo: Bag | undefined;
  readonly logLevel: (typeof LOG_LEVELS)[number] | undefined;
}

const NAME_FIELD: Readonly<Record<string, 'name' | 'uri'>> = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' };

function mismatch(header: string, problem: string): WardenError {
  return new WardenError('header_mismatch', `Header mismatch: ${problem}`, { data: { mismatch: { header, body: problem } } });
}

function badEnvelope(key: string, problem: string): WardenError {
  return new WardenError('invalid_params', `Invalid _meta envelope: ${key} ${problem}`, { data: { envelope: { key, problem } } });
}

function header(headers: IncomingHttpHeaders, name: string): string | undefined {
  const value = headers[name];
  return typeof value === 'string' ? value : undefined;
}

/** A header value as sent: plain, or `=?base64?...?=` (UTF-8); undefined when the encoding is bad. */
export function decodeHeaderValue(value: string): string | undefined {
  const match = /^=\?base64\?([A-Za-z0-9+/]*={0,2})\?=$/.exec(value);
  if (!match) return value;
  const bytes = Buffer.from(match[1]!, 'base64');
  if (bytes.toString('base64') !== match[1] || !isUtf8(bytes)) return undefined;
  return bytes.toString('utf8');
}

/** The value a mirrored header must carry for `value` (strings as-is, booleans as text; numbers compare as numbers). */
function headerText(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (typeof value === 'boolean') return String(value);
  return undefined;
}

function checkEnvelope(meta: Bag): Envelope {
  const version = meta[META.protocolVersion];
  if (typeof version !== 'string') throw badEnvelope(META.protocolVersion, 'must be a string');
  const capabilities = meta[META.clientCapabilities];
  if (typeof capabilities !== 'object' || capabilities === null || Array.isArray(capabilities))
    throw badEnvelope(META.clientCapabilities, 'is missing or not an object');
  const info = meta[META.clientInfo];
  if (
    info !== undefined &&
    (typeof info !== 'object' || info === null || typeof (info as Bag).name !== 'string' || typeof (info as Bag).version !== 'string')
  ) {
    throw badEnvelope(META.clientInfo, 'must be an object with a name and a version');
  }
  const level = meta[META.logLevel];
  if (level !== undefined && !(LOG_LEVELS as readonly unknown[]).includes(level)) throw badEnvelope(META.logLevel, `must be one of ${LOG_LEVELS.join(', ')}`);
  return { version, clientCapabilities: capabilities as Bag, clientInfo: info as Bag | undefined, logLevel: level as Envelope['logLevel'] };
}

/**
 * Validates a modern request (or notification). `headerParams` names the `Mcp-Param-*`
 * headers of a tool, when its schema is known. Throws the WardenError to answer with.
 */
export function validateModern(message: Bag, headers: IncomingHttpHeaders, headerParams?: (tool: string) => readonly HeaderParam[] | undefined): Envelope {
  const method = String(message.method);
  const isRequest = message.id !== undefined;
  const meta = metaOf(message)!;
  const claimed = meta[META.protocolVersion];
  const versionHeader = header(headers, 'mcp-protocol-version');
  if (versionHeader !== undefined && versionHeader !== claimed)
    throw mismatch('MCP-Protocol-Version', 'MCP-Protocol-Version does not match the protocol version in _meta');
  const methodHeader = header(headers, 'mcp-method');
  if (methodHeader !== undefined && methodHeader !== method) throw mismatch('Mcp-Method', 'Mcp-Method does not match the method in the body');
  const envelope = checkEnvelope(meta);
  if (envelope.version !== MODERN_VERSION) {
    throw new WardenError('unsupported_protocol_version', `Unsupported protocol version: ${envelope.version.slice(0, 32)}`, {
      data: { supported: [...SUPPORTED_VERSIONS], requested: envelope.version.slice(0, 32) },
    });
  }
  if (versionHeader === undefined) throw mismatch('MCP-Protocol-Version', 'the required MCP-Protocol-Version header is absent');
  if (!isRequest) return envelope;
  if (methodHeader === undefined) throw mismatch('Mcp-Method', 'the required Mcp-Method header is absent');
  const params = (message.params ?? {}) as Bag;
  const field = NAME_FIELD[method];
  if (field !== undefined && typeof params[field] === 'string') {
    const sent = header(headers, 'mcp-name');
    if (sent === undefined) throw mismatch('Mcp-Name', `the required Mcp-Name header is absent (${method} names its ${field})`);
    if (decodeHeaderValue(sent) !== params[field]) throw mismatch('Mcp-Name', `Mcp-Name does not match params.${field}`);
  }
  if (method === 'tools/call' && typeof params.name === 'string') checkParamHeaders(params, headers, headerParams?.(params.name));
  return envelope;
}

function checkParamHeaders(params: Bag, headers: IncomingHttpHeaders, declared: readonly HeaderParam[] | undefined): void {
  if (!declared || declared.length === 0) return;
  const args = (typeof params.arguments === 'object' && params.arguments !== null ? params.arguments : {}) as Bag;
  for (const { header: name, property } of declared) {
    const value = args[property];
    if (value === undefined || value === null) continue;
    const sent = header(headers, `mcp-param-${name.toLowerCase()}`);
    if (sent === undefined) throw mismatch(`Mcp-Param-${name}`, `the required Mcp-Param-${name} header is absent (argument ${property})`);
    const decoded = decodeHeaderValue(sent);
    // A badly encoded header matches nothing (not even an argument no header can carry).
    const equal = decoded !== undefined && (typeof value === 'number' ? Number(decoded) === value : decoded === headerText(value));
    if (!equal) throw mismatch(`Mcp-Param-${name}`, `Mcp-Param-${name} does not match argument ${property}`);
  }
}

/** The `Mcp-Param-*` headers a tool's input schema declares (`x-mcp-header` on top-level properties). */
export function headerParamsOf(inputSchema: unknown): HeaderParam[] {
  const properties = (inputSchema as { properties?: unknown } | undefined)?.properties;
  if (typeof properties !== 'object' || properties === null) return [];
  const out: HeaderParam[] = [];
  for (const [property, schema] of Object.entries(properties as Bag)) {
    const name = (schema as Bag | null)?.['x-mcp-header'];
    if (typeof name === 'string' && /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/.test(name)) out.push({ header: name, property });
  }
  return out;
}
