/**
 * JSON-RPC message shape checks for the message path, without a schema library: the same
 * rules as the SDK's JSONRPCMessageSchema (strict keys, integer or string ids, object
 * params and result, integer error codes), done once per message with plain property tests.
 * The SDK's `isJSONRPC*` guards run a schema parse on every call; the bridge classifies
 * each message once with `kindOf` instead.
 */
import type { JSONRPCMessage, JSONRPCNotification, JSONRPCRequest, RequestId } from '@modelcontextprotocol/sdk/types.js';

export type MessageKind = 'request' | 'notification' | 'result' | 'error';

type Bag = Record<string, unknown>;

function isObject(value: unknown): value is Bag {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** An integer JSON can carry exactly (zod's `.int()` accepts safe integers only). */
function isInt(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value);
}

function isRequestId(value: unknown): value is RequestId {
  return typeof value === 'string' || isInt(value);
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

const RELATED_TASK = 'io.modelcontextprotocol/related-task';

/** `_meta` of params or of a result: an object; a progress token and a related task, if present, well-formed. */
function validMeta(meta: unknown): boolean {
  if (meta === undefined) return true;
  if (!isObject(meta)) return false;
  const token = meta.progressToken;
  if (token !== undefined && !isRequestId(token)) return false;
  const task = meta[RELATED_TASK];
  return task === undefined || (isObject(task) && typeof task.taskId === 'string');
}

/** Params and results: objects whose `_meta` is well-formed. */
function validBag(value: unknown): boolean {
  return isObject(value) && validMeta(value._meta);
}

/** The SDK's error object is not strict: extra keys (a stack, say) are allowed through. */
function validError(error: unknown): boolean {
  return isObject(error) && isInt(error.code) && typeof error.message === 'string';
}

/** The message's kind, or undefined when `value` is not a valid JSON-RPC 2.0 message. */
export function kindOf(value: unknown): MessageKind | undefined {
  if (!isObject(value) || value.jsonrpc !== '2.0') return undefined;
  if (typeof value.method === 'string') {
    if (value.params !== undefined && !validBag(value.params)) return undefined;
    if ('id' in value) return isRequestId(value.id) && onlyKeys(value, REQUEST_KEYS) ? 'request' : undefined;
    return onlyKeys(value, NOTIFICATION_KEYS) ? 'notification' : undefined;
  }
  if ('method' in value) return undefined;
  if ('result' in value) return validBag(value.result) && isRequestId(value.id) && onlyKeys(value, RESULT_KEYS) ? 'result' : undefined;
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
  return (
    request.method === 'initialize' &&
    params !== undefined &&
    typeof params.protocolVersion === 'string' &&
    isObject(params.capabilities) &&
    isObject(params.clientInfo) &&
    typeof params.clientInfo.name === 'string' &&
    typeof params.clientInfo.version === 'string'
  );
}
