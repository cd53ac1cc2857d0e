/**
 * The `requestState` of a multi round-trip request, sealed: an HMAC (with a deployment key)
 * over a nonce, the principal, the request's method and a digest of its parameters, and an
 * expiry. A client can neither forge one nor replay another caller's (or another request's);
 * single use is enforced by whoever holds the nonce (the held child request).
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export interface SealedFields {
  /** Identifies the held request; used once. */
  readonly nonce: string;
  /** Whose request it is (`kind:id`). */
  readonly principal: string;
  readonly method: string;
  /** Digest of the request's parameters without `_meta`, `inputResponses` and `requestState`. */
  readonly digest: string;
  /** Epoch ms after which the state is refused. */
  readonly expires: number;
  /** On Fly.io: the machine that holds the request, where its retry is routed (src/fly/router.ts). */
  readonly machine?: string;
}

/** Digest of what must stay the same between a request and its retry. */
export function requestDigest(params: Record<string, unknown> | undefined): string {
  const { _meta, inputResponses, requestState, ...rest } = params ?? {};
  void _meta;
  void inputResponses;
  void requestState;
  return createHash('sha256').update(stableJson(rest)).digest('base64url');
}

function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

export function newNonce(): string {
  return randomBytes(16).toString('base64url');
}

export class RequestStateSealer {
  constructor(private readonly key: Buffer) {}

  seal(fields: SealedFields): string {
    const payload = Buffer.from(JSON.stringify(fields)).toString('base64url');
    return `${payload}.${this.mac(payload)}`;
  }

  /** The fields, when `state` is one this deployment sealed and it has not expired; else undefined. */
  open(state: unknown, now = Date.now()): SealedFields | undefined {
    if (typeof state !== 'string' || state.length > 4096) return undefined;
    const dot = state.indexOf('.');
    if (dot <= 0) return undefined;
    const payload = state.slice(0, dot);
    const mac = Buffer.from(state.slice(dot + 1));
    const expected = Buffer.from(this.mac(payload));
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) return undefined;
    try {
      const fields = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as SealedFields;
      return typeof fields.expires === 'number' && fields.expires > now ? fields : undefined;
    } catch {
      return undefined;
    }
  }

  private mac(payload: string): string {
    return createHmac('sha256', this.key).update(`requestState.${payload}`).digest('base64url');
  }
}
