/**
 * JSON-RPC message shape checks for the message path, without a schema library: the same
 * rules as the SDK's JSONRPCMessageSchema (strict keys, integer or string ids, object
 * params and result, integer error codes), done once per message with plain property tests.
 * The SDK's `isJSONRPC*` guards run a schema parse on every call; the bridge classifies
 * each message once with `kindOf` instead.
 */
import type {
  JSONRPCMessage,
  JSONRPCNotification,
  JSONRPCRequest,
  RequestId,
} from '@modelcontextprotocol/sdk/types.js';

export type MessageKind = 'request' | 'notification' | 'result' | 'error';

type Bag = Record<string, unknown>;

function isObject(value: unknown): value is Bag {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isRequestId(value: unknown): value is RequestId {
  return typeof value === 'string' || (typeof value === 'number' && Number.isInteger(value));
}

/** Only `allowed` keys present (the SDK's schemas are strict objects). */
function onlyKeys(m: Bag, allowed: readonly string[]): boolean {
  for (const key in m) if (!allowed.includes(key)) return false;
  return true;
}

const REQUEST_KEYS = ['jsonrpc', 'id', 'method', 'params'];
const NOTIFICATION_KEYS = ['jsonrpc', 'method', 'params'];
const RESULT_KEYS = ['jsonrpc', 'id', 'result'];
const ERROR_KEYS = ['jsonrpc', 'id', 'error'];

function validParams(params: unknown): boolean {
  if (params === undefined) return true;
  if (!isObject(params)) return false;
  const meta = params._meta;
  if (meta === undefined) return true;
  if (!isObject(meta)) return false;
  const token = meta.progressToken;
  return token === undefined || typeof token === 'string' || (typeof token === 'number' && Number.isInteger(token));
}

function validError(error: unknown): boolean {
  if (!isObject(error) || typeof error.code !== 'number' || !Number.isInteger(error.code) || typeof error.message !== 'string') return false;
  return onlyKeys(error, ['code', 'message', 'data']);
}

/** The message's kind, or undefined when `value` is not a valid JSON-RPC 2.0 message. */
export function kindOf(value: unknown): MessageKind | undefined {
  if (!isObject(value) || value.jsonrpc !== '2.0') return undefined;
  if (typeof value.method === 'string') {
    if (!validParams(value.params)) return undefined;
    if ('id' in value) return isRequestId(value.id) && onlyKeys(value, REQUEST_KEYS) ? 'request' : undefined;
    return onlyKeys(value, NOTIFICATION_KEYS) ? 'notification' : undefined;
  }
  if ('method' in value) return undefined;
  if ('result' in value) return isObject(value.result) && isRequestId(value.id) && onlyKeys(value, RESULT_KEYS) ? 'result' : undefined;
  if ('error' in value) {
    if (value.id !== undefined && !isRequestId(value.id)) return undefined;
    return validError(value.error) && onlyKeys(value, ERROR_KEYS) ? 'error' : undefined;
  }
  return undefined;
}

/** `value` as a JSON-RPC message, or undefined when it is not one. */
export function asMessage(value: unknown): JSONRPCMessage | undefined {
  return kindOf(value) === undefined ? undefined : (value as JSONRPCMessage);
}

/** For messages already known to be valid: is it a request? */
export function isRequest(message: JSONRPCMessage): message is JSONRPCRequest {
  return 'method' in message && 'id' in message;
}

/** For messages already known to be valid: is it a notification? */
export function isNotification(message: JSONRPCMessage): message is JSONRPCNotification {
  return 'method' in message && !('id' in message);
}

/** For messages already known to be valid: is it a response (result or error)? */
export function isResponse(message: JSONRPCMessage): boolean {
  return !('method' in message);
}

/** Is it a valid `initialize` request? */
export function isInitialize(value: unknown): value is JSONRPCRequest {
  if (kindOf(value) !== 'request') return false;
  const request = value as JSONRPCRequest;
  const params = request.params as Bag | undefined;
  return request.method === 'initialize' && params !== undefined && typeof params.protocolVersion === 'string' && isObject(params.capabilities) && isObject(params.clientInfo) && typeof params.clientInfo.name === 'string' && typeof params.clientInfo.version === 'string';
}
