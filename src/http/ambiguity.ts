/**
 * Under a policy, a request body the engine cannot read unambiguously is denied before
 * it reaches a transport: JSON-RPC batch arrays, and objects with duplicate keys.
 */
import { WardenError } from '../errors.js';
import { findDuplicateKey } from './duplicateKeys.js';

/** Why a parsed POST body is ambiguous under a policy (`raw` is its text), or undefined. */
export function ambiguityError(body: unknown, raw: string): WardenError | undefined {
  if (Array.isArray(body)) {
    return new WardenError('policy_denied', 'batch requests are not accepted under a policy', { data: { reason: 'malformed_request', rule: 'shape' } });
  }
  const key = findDuplicateKey(raw);
  if (key === undefined) return undefined;
  return new WardenError('policy_denied', 'a JSON object repeats a key; ambiguous requests are denied', {
    data: { reason: 'malformed_request', rule: 'shape', key: key.slice(0, 64) },
  });
}
