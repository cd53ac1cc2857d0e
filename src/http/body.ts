/**
 * The one body reader for every POST: Content-Type, length cap (declared and actual),
 * Content-Length or chunked, gzip/deflate, UTF-8 only (a leading byte order mark is
 * dropped), one JSON parse, and, under a tool policy, the ambiguity rules. Each failure
 * is a WardenError naming the problem (413, 415, 400). The OAuth endpoints' form bodies
 * (`application/x-www-form-urlencoded`) are read by the same collector.
 */
import type { IncomingMessage } from 'node:http';
import { isUtf8 } from 'node:buffer';
import { createGunzip, createInflate, type Gunzip, type Inflate } from 'node:zlib';
import { PayloadTooLargeError, WardenError } from '../errors.js';
import { ambiguityError } from './ambiguity.js';

export interface BodyOptions {
  /** Largest body, in bytes, after decompression. */
  readonly limitBytes: number;
  /** Under a policy: batches, repeated keys and other charsets are refused. */
  readonly strict: boolean;
}

export interface JsonBody {
  readonly value: unknown;
}

/** `application/json`, with at most a UTF-8 charset parameter. */
const JSON_TYPE = /^application\/json\s*(?:;|$)/i;
const CHARSET = /;\s*charset\s*=\s*"?([^;"\s]+)"?/i;

/** Strict UTF-8: a bad byte throws; a leading byte order mark is dropped. */
const UTF8 = new TextDecoder('utf-8', { fatal: true });

const NOT_JSON = 'Content-Type must be application/json';

/** Why the Content-Type can't be read as a JSON body, or undefined when it can. */
function contentTypeError(contentType: string | undefined): WardenError | undefined {
  if (contentType === undefined || !JSON_TYPE.test(contentType)) return new WardenError('unsupported_media_type', `Unsupported Media Type: ${NOT_JSON}`);
  const charset = CHARSET.exec(contentType)?.[1]?.toLowerCase();
  if (charset !== undefined && charset !== 'utf-8' && charset !== 'utf8') {
    return new WardenError('unsupported_media_type', 'Unsupported Media Type: only UTF-8 bodies are accepted (charset=utf-8)');
  }
  return undefined;
}

/** Reads and parses the body; undefined when the client went away before it ended. */
export async function readJsonBody(req: IncomingMessage, options: BodyOptions): Promise<JsonBody | undefined> {
  const typeError = contentTypeError(req.headers['content-type']);
  if (typeError) throw typeError;
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > options.limitBytes) throw new PayloadTooLargeError(options.limitBytes);
  const bytes = await collect(req, options.limitBytes);
  if (bytes === undefined) return undefined;
  let text: string;
  try {
    // One pass: validates, decodes and drops a leading byte order mark.
    text = UTF8.decode(bytes);
  } catch {
    throw new WardenError('parse_error', 'Parse error: request body is not valid UTF-8');
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    value = undefined;
  }
  if (typeof value !== 'object' || value === null) throw new WardenError('parse_error', 'Parse error: request body is not valid JSON');
  if (options.strict) {
    const ambiguous = ambiguityError(value, text);
    if (ambiguous) throw ambiguous;
  }
  return { value };
}

const FORM_TYPE = /^application\/x-www-form-urlencoded\s*(?:;|$)/i;

/** Reads a form body; undefined when the client went away before it ended. */
export async function readFormBody(req: IncomingMessage, limitBytes: number): Promise<URLSearchParams | undefined> {
  if (!FORM_TYPE.test(req.headers['content-type'] ?? '')) {
    throw new WardenError('unsupported_media_type', 'Unsupported Media Type: Content-Type must be application/x-www-form-urlencoded');
  }
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limitBytes) throw new PayloadTooLargeError(limitBytes);
  const bytes = await collect(req, limitBytes);
  if (bytes === undefined) return undefined;
  if (!isUtf8(bytes)) throw new WardenError('bad_request', 'the form body is not valid UTF-8');
  return new URLSearchParams(bytes.toString('utf8'));
}

function decoderFor(encoding: string | undefined): Gunzip | Inflate | undefined | false {
  const value = (encoding ?? 'identity').trim().toLowerCase();
  if (value === 'identity' || value === '') return undefined;
  if (value === 'gzip' || value === 'x-gzip') return createGunzip();
  if (value === 'deflate') return createInflate();
  return false;
}

/** The body's bytes (decompressed), at most `limit` of them. */
function collect(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  const decoder = decoderFor(req.headers['content-encoding']);
  if (decoder === false) {
    return Promise.reject(new WardenError('unsupported_media_type', 'Unsupported Media Type: Content-Encoding must be gzip, deflate or identity'));
  }
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    const settle = (outcome: Buffer | undefined | Error) => {
      if (settled) return;
      settled = true;
      if (outcome instanceof Error) reject(outcome);
      else resolve(outcome);
    };
    const source = decoder ?? req;
    source.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > limit) {
        decoder?.destroy();
        req.pause();
        return settle(new PayloadTooLargeError(limit));
      }
      chunks.push(chunk);
    });
    source.once('end', () => {
      if (!decoder && !req.complete) return settle(undefined);
      settle(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    });
    if (decoder) {
      decoder.once('error', () => settle(new WardenError('bad_request', 'the request body could not be decompressed')));
      req.pipe(decoder);
    }
    req.once('error', () => settle(undefined));
    req.once('close', () => {
      if (!req.complete) settle(undefined);
    });
  });
}
