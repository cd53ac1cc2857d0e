/**
 * src/bridge/jsonrpc.ts checked against the SDK it mirrors: every value in one table goes
 * through both `kindOf` and the SDK's own `JSONRPCMessageSchema` (and the four member
 * schemas, for the kind), and the two must agree. Then the narrow guards and isInitialize.
 */
import { describe, expect, it } from '@jest/globals';
import {
  JSONRPCErrorResponseSchema,
  JSONRPCMessageSchema,
  JSONRPCNotificationSchema,
  JSONRPCRequestSchema,
  JSONRPCResultResponseSchema,
  type JSONRPCMessage,
} from '@modelcontextprotocol/sdk/types.js';
import { asMessage, isInitialize, isNotification, isRequest, isResponse, kindOf, type MessageKind } from '../../../src/bridge/jsonrpc.js';

/** The kind the SDK's member schemas give `value`, or undefined when none accepts it. */
function sdkKind(value: unknown): MessageKind | undefined {
  if (JSONRPCRequestSchema.safeParse(value).success) return 'request';
  if (JSONRPCNotificationSchema.safeParse(value).success) return 'notification';
  if (JSONRPCResultResponseSchema.safeParse(value).success) return 'result';
  if (JSONRPCErrorResponseSchema.safeParse(value).success) return 'error';
  return undefined;
}

interface Case {
  readonly name: string;
  readonly value: unknown;
  /** What kindOf should answer; undefined: not a JSON-RPC message. */
  readonly kind: MessageKind | undefined;
}

const V = '2.0' as const;

const VALID: Case[] = [
  { name: 'a request with an integer id', value: { jsonrpc: V, id: 1, method: 'ping' }, kind: 'request' },
  { name: 'a request with a string id', value: { jsonrpc: V, id: 'a-1', method: 'tools/list' }, kind: 'request' },
  { name: 'a request with an empty string id', value: { jsonrpc: V, id: '', method: 'ping' }, kind: 'request' },
  { name: 'a request with id 0', value: { jsonrpc: V, id: 0, method: 'ping' }, kind: 'request' },
  { name: 'a request with a negative id', value: { jsonrpc: V, id: -7, method: 'ping' }, kind: 'request' },
  { name: 'a request with an integral float id (1.0)', value: JSON.parse('{"jsonrpc":"2.0","id":1.0,"method":"ping"}'), kind: 'request' },
  { name: 'a request with empty params', value: { jsonrpc: V, id: 1, method: 'ping', params: {} }, kind: 'request' },
  {
    name: 'a request with any params keys',
    value: { jsonrpc: V, id: 1, method: 'tools/call', params: { name: 'echo', arguments: { a: [1] } } },
    kind: 'request',
  },
  { name: 'a request with a string progressToken', value: { jsonrpc: V, id: 1, method: 'x', params: { _meta: { progressToken: 'p' } } }, kind: 'request' },
  { name: 'a request with an integer progressToken', value: { jsonrpc: V, id: 1, method: 'x', params: { _meta: { progressToken: 3 } } }, kind: 'request' },
  { name: 'a request with other _meta keys', value: { jsonrpc: V, id: 1, method: 'x', params: { _meta: { other: true } } }, kind: 'request' },
  { name: 'a request with an empty method', value: { jsonrpc: V, id: 1, method: '' }, kind: 'request' },
  { name: 'a notification', value: { jsonrpc: V, method: 'notifications/initialized' }, kind: 'notification' },
  {
    name: 'a notification with params',
    value: { jsonrpc: V, method: 'notifications/progress', params: { progressToken: 1, progress: 0.5 } },
    kind: 'notification',
  },
  { name: 'a notification with a _meta progressToken', value: { jsonrpc: V, method: 'n', params: { _meta: { progressToken: 'x' } } }, kind: 'notification' },
  { name: 'a result', value: { jsonrpc: V, id: 1, result: {} }, kind: 'result' },
  { name: 'a result with content and a string id', value: { jsonrpc: V, id: 'r', result: { content: [{ type: 'text', text: 'hi' }] } }, kind: 'result' },
  { name: 'an error', value: { jsonrpc: V, id: 1, error: { code: -32601, message: 'Method not found' } }, kind: 'error' },
  { name: 'an error with data', value: { jsonrpc: V, id: 'e', error: { code: -32000, message: 'x', data: { any: ['thing'] } } }, kind: 'error' },
  { name: 'an error without an id', value: { jsonrpc: V, error: { code: -32700, message: 'Parse error' } }, kind: 'error' },
];

const INVALID: Case[] = [
  { name: 'null', value: null, kind: undefined },
  { name: 'undefined', value: undefined, kind: undefined },
  { name: 'a string', value: '{"jsonrpc":"2.0","id":1,"method":"ping"}', kind: undefined },
  { name: 'a number', value: 42, kind: undefined },
  { name: 'an empty array', value: [], kind: undefined },
  { name: 'a batch array of valid requests', value: [{ jsonrpc: V, id: 1, method: 'ping' }], kind: undefined },
  { name: 'an empty object', value: {}, kind: undefined },
  { name: 'no jsonrpc', value: { id: 1, method: 'ping' }, kind: undefined },
  { name: 'jsonrpc "1.0"', value: { jsonrpc: '1.0', id: 1, method: 'ping' }, kind: undefined },
  { name: 'jsonrpc as the number 2', value: { jsonrpc: 2, id: 1, method: 'ping' }, kind: undefined },
  { name: 'a float id', value: { jsonrpc: V, id: 1.5, method: 'ping' }, kind: undefined },
  { name: 'a null id on a request', value: { jsonrpc: V, id: null, method: 'ping' }, kind: undefined },
  { name: 'a boolean id', value: { jsonrpc: V, id: true, method: 'ping' }, kind: undefined },
  { name: 'an object id', value: { jsonrpc: V, id: { n: 1 }, method: 'ping' }, kind: undefined },
  { name: 'a NaN id', value: { jsonrpc: V, id: Number.NaN, method: 'ping' }, kind: undefined },
  { name: 'an Infinity id', value: { jsonrpc: V, id: Number.POSITIVE_INFINITY, method: 'ping' }, kind: undefined },
  { name: 'an id key holding undefined', value: { jsonrpc: V, id: undefined, method: 'ping' }, kind: undefined },
  { name: 'a numeric method', value: { jsonrpc: V, id: 1, method: 1 }, kind: undefined },
  { name: 'a null method', value: { jsonrpc: V, id: 1, method: null, result: {} }, kind: undefined },
  { name: 'an extra key on a request', value: { jsonrpc: V, id: 1, method: 'ping', extra: 1 }, kind: undefined },
  { name: 'an extra key on a notification', value: { jsonrpc: V, method: 'n', extra: 1 }, kind: undefined },
  { name: 'an own __proto__ key (as JSON.parse makes it)', value: JSON.parse('{"jsonrpc":"2.0","id":1,"method":"ping","__proto__":{}}'), kind: undefined },
  { name: 'params as an array', value: { jsonrpc: V, id: 1, method: 'x', params: [1, 2] }, kind: undefined },
  { name: 'params null', value: { jsonrpc: V, id: 1, method: 'x', params: null }, kind: undefined },
  { name: 'params a string', value: { jsonrpc: V, method: 'x', params: 'p' }, kind: undefined },
  { name: '_meta null', value: { jsonrpc: V, id: 1, method: 'x', params: { _meta: null } }, kind: undefined },
  { name: '_meta an array', value: { jsonrpc: V, id: 1, method: 'x', params: { _meta: [] } }, kind: undefined },
  { name: 'a float progressToken', value: { jsonrpc: V, id: 1, method: 'x', params: { _meta: { progressToken: 1.5 } } }, kind: undefined },
  { name: 'a null progressToken', value: { jsonrpc: V, method: 'x', params: { _meta: { progressToken: null } } }, kind: undefined },
  { name: 'method and result together', value: { jsonrpc: V, id: 1, method: 'x', result: {} }, kind: undefined },
  { name: 'result and error together', value: { jsonrpc: V, id: 1, result: {}, error: { code: 1, message: 'm' } }, kind: undefined },
  { name: 'a result array', value: { jsonrpc: V, id: 1, result: [] }, kind: undefined },
  { name: 'a result null', value: { jsonrpc: V, id: 1, result: null }, kind: undefined },
  { name: 'a result string', value: { jsonrpc: V, id: 1, result: 'ok' }, kind: undefined },
  { name: 'a result without an id', value: { jsonrpc: V, result: {} }, kind: undefined },
  { name: 'a result with a null id', value: { jsonrpc: V, id: null, result: {} }, kind: undefined },
  { name: 'an extra key on a result', value: { jsonrpc: V, id: 1, result: {}, extra: 1 }, kind: undefined },
  { name: 'an error missing its message', value: { jsonrpc: V, id: 1, error: { code: -32600 } }, kind: undefined },
  { name: 'an error missing its code', value: { jsonrpc: V, id: 1, error: { message: 'm' } }, kind: undefined },
  { name: 'an error with a float code', value: { jsonrpc: V, id: 1, error: { code: 1.5, message: 'm' } }, kind: undefined },
  { name: 'an error with a string code', value: { jsonrpc: V, id: 1, error: { code: '-32600', message: 'm' } }, kind: undefined },
  { name: 'an error with a numeric message', value: { jsonrpc: V, id: 1, error: { code: 1, message: 2 } }, kind: undefined },
  { name: 'an error with a null id', value: { jsonrpc: V, id: null, error: { code: 1, message: 'm' } }, kind: undefined },
  { name: 'an error with a float id', value: { jsonrpc: V, id: 0.5, error: { code: 1, message: 'm' } }, kind: undefined },
  { name: 'an error that is a string', value: { jsonrpc: V, id: 1, error: 'boom' }, kind: undefined },
  { name: 'an error that is an array', value: { jsonrpc: V, id: 1, error: [] }, kind: undefined },
  { name: 'an extra key on an error response', value: { jsonrpc: V, id: 1, error: { code: 1, message: 'm' }, extra: 1 }, kind: undefined },
  { name: 'only jsonrpc and id', value: { jsonrpc: V, id: 1 }, kind: undefined },
];

const TABLE = [...VALID, ...INVALID];

describe('kindOf agrees with the SDK JSONRPCMessageSchema', () => {
  it('the table holds valid and invalid values of every shape', () => {
    expect(VALID.length).toBeGreaterThanOrEqual(15);
    expect(INVALID.length).toBeGreaterThanOrEqual(40);
    expect(new Set(VALID.map((c) => c.kind))).toEqual(new Set(['request', 'notification', 'result', 'error']));
  });

  it.each(TABLE)('$name', ({ value, kind }) => {
    const sdk = JSONRPCMessageSchema.safeParse(value).success;
    // one combined check, so a failure shows both answers side by side
    expect({ warden: kindOf(value) !== undefined, sdk }).toEqual({ warden: kind !== undefined, sdk: kind !== undefined });
  });
});

describe('kindOf names the kind the SDK schemas name', () => {
  it.each(VALID)('$name -> $kind', ({ value, kind }) => {
    expect(kindOf(value)).toBe(kind);
    expect(sdkKind(value)).toBe(kind);
  });
});

describe('asMessage', () => {
  it.each(VALID)('returns the same object for $name', ({ value }) => {
    expect(asMessage(value)).toBe(value);
  });

  it.each(INVALID)('returns undefined for $name', ({ value }) => {
    expect(asMessage(value)).toBeUndefined();
  });
});

describe('isRequest, isNotification, isResponse on valid messages', () => {
  it.each(VALID)('$name', ({ value, kind }) => {
    const message = value as JSONRPCMessage;
    expect({ request: isRequest(message), notification: isNotification(message), response: isResponse(message) }).toEqual({
      request: kind === 'request',
      notification: kind === 'notification',
      response: kind === 'result' || kind === 'error',
    });
  });
});

describe('isInitialize', () => {
  const params = () => ({ protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'c', version: '1' } });
  const init = (over: Record<string, unknown> = {}) => ({ jsonrpc: V, id: 1, method: 'initialize', params: params(), ...over });

  it.each<[string, unknown]>([
    ['a minimal initialize request', init()],
    ['a string id', init({ id: 'init-1' })],
    [
      'capabilities with content and clientInfo with a title',
      init({ params: { ...params(), capabilities: { roots: { listChanged: true } }, clientInfo: { name: 'c', version: '1', title: 'C' } } }),
    ],
    ['a _meta progressToken', init({ params: { ...params(), _meta: { progressToken: 'p' } } })],
  ])('accepts %s', (_name, value) => {
    expect(isInitialize(value)).toBe(true);
  });

  const without = (key: string) => {
    const p: Record<string, unknown> = params();
    delete p[key];
    return init({ params: p });
  };

  it.each<[string, unknown]>([
    ['params missing', { jsonrpc: V, id: 1, method: 'initialize' }],
    ['params empty', init({ params: {} })],
    ['params an array', init({ params: [params()] })],
    ['protocolVersion missing', without('protocolVersion')],
    ['protocolVersion a number', init({ params: { ...params(), protocolVersion: 20250618 } })],
    ['capabilities missing', without('capabilities')],
    ['capabilities an array', init({ params: { ...params(), capabilities: [] } })],
    ['capabilities null', init({ params: { ...params(), capabilities: null } })],
    ['clientInfo missing', without('clientInfo')],
    ['clientInfo an array', init({ params: { ...params(), clientInfo: ['c', '1'] } })],
    ['clientInfo.version missing', init({ params: { ...params(), clientInfo: { name: 'c' } } })],
    ['clientInfo.version a number', init({ params: { ...params(), clientInfo: { name: 'c', version: 1 } } })],
    ['clientInfo.name missing', init({ params: { ...params(), clientInfo: { version: '1' } } })],
    ['sent as a notification (no id)', { jsonrpc: V, method: 'initialize', params: params() }],
    ['a null id', init({ id: null })],
    ['another method', init({ method: 'Initialize' })],
    ['an extra top-level key', init({ extra: true })],
    ['wrong jsonrpc', init({ jsonrpc: '1.0' })],
    ['a result', { jsonrpc: V, id: 1, result: params() }],
    ['a batch holding an initialize', [init()]],
    ['null', null],
    ['a string', 'initialize'],
  ])('rejects %s', (_name, value) => {
    expect(isInitialize(value)).toBe(false);
  });
});

/**
 * Edge cases where a plain property test could easily differ from the SDK's schema:
 *
 * - `error` is a plain (non-strict) z.object in the SDK: extra keys inside it are stripped,
 *   not refused. asMessage is also how ChildTransport reads a child's stdout, so refusing
 *   them would drop a child's `{"error":{"code":..,"message":..,"stack":..}}` reply.
 * - zod 4's `z.number().int()` accepts safe integers only (ids and error codes).
 * - the SDK checks `_meta` of a result the same way as a request's, and the related-task
 *   key inside `_meta`.
 */
const EDGES: Case[] = [
  {
    name: 'an error object with an extra key (SDK: accepted)',
    value: { jsonrpc: V, id: 1, error: { code: -32603, message: 'm', stack: 'at x' } },
    kind: 'error',
  },
  {
    name: 'an id beyond Number.MAX_SAFE_INTEGER (SDK: refused)',
    value: JSON.parse('{"jsonrpc":"2.0","id":9007199254740993,"method":"ping"}'),
    kind: undefined,
  },
  {
    name: 'an error code beyond Number.MAX_SAFE_INTEGER (SDK: refused)',
    value: { jsonrpc: V, id: 1, error: { code: 2 ** 60, message: 'm' } },
    kind: undefined,
  },
  { name: 'a result whose _meta is a number (SDK: refused)', value: { jsonrpc: V, id: 1, result: { _meta: 5 } }, kind: undefined },
  {
    name: 'a result with a float _meta.progressToken (SDK: refused)',
    value: { jsonrpc: V, id: 1, result: { _meta: { progressToken: 1.5 } } },
    kind: undefined,
  },
  {
    name: 'a related-task _meta without a string taskId (SDK: refused)',
    value: { jsonrpc: V, id: 1, method: 'x', params: { _meta: { 'io.modelcontextprotocol/related-task': { taskId: 1 } } } },
    kind: undefined,
  },
];

describe('edge cases: kindOf agrees with the SDK', () => {
  // Control: the SDK really answers what each case says (so the table is right).
  it.each(EDGES)('the SDK: $name', ({ value, kind }) => {
    expect(sdkKind(value)).toBe(kind);
  });

  it.each(EDGES)('kindOf: $name', ({ value, kind }) => {
    expect(kindOf(value)).toBe(kind);
  });
});
