/**
 * rejectAmbiguousBodies behind the same express.json setup app.ts uses, on a real server
 * listening on a random port.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler } from 'express';
import { ERROR_TABLE } from '../../../src/errors.js';
import { keepRawBody, rejectAmbiguousBodies } from '../../../src/http/ambiguity.js';
import { sendError } from '../../../src/http/respond.js';

let server: Server;
let base: string;
let policyActive = true;

beforeAll(async () => {
  const app = express();
  app.use(express.json({ limit: 1_000_000, type: ['application/json', 'application/*+json'], verify: keepRawBody }));
  app.use(rejectAmbiguousBodies(() => policyActive));
  app.all('/mcp', (req, res) => {
    res.json({ passed: true, body: req.body as unknown });
  });
  const onError: ErrorRequestHandler = (error, _req, res, _next) => sendError(res, error);
  app.use(onError);
  server = app.listen(0, '127.0.0.1');
  await new Promise<void>((resolve) => server.once('listening', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

async function post(body: string | Buffer, contentType = 'application/json'): Promise<{ status: number; json: Record<string, unknown> }> {
  const res = await fetch(`${base}/mcp`, { method: 'POST', headers: { 'content-type': contentType }, body });
  return { status: res.status, json: (await res.json()) as Record<string, unknown> };
}

function expectDenied(result: { status: number; json: Record<string, unknown> }) {
  expect(result.status).toBe(ERROR_TABLE.policy_denied.status);
  expect(result.json).toMatchObject({ jsonrpc: '2.0', id: null, error: { code: ERROR_TABLE.policy_denied.rpc, data: { code: 'policy_denied', reason: 'malformed_request', rule: 'shape' } } });
  return (result.json['error'] as { message: string; data: Record<string, unknown> });
}

const call = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}';

describe('rejectAmbiguousBodies under a policy', () => {
  it('lets a plain request through', async () => {
    policyActive = true;
    expect(await post(call)).toMatchObject({ status: 200, json: { passed: true } });
  });

  it('denies a batch array', async () => {
    policyActive = true;
    const error = expectDenied(await post(`[${call}]`));
    expect(error.message).toBe('batch requests are not accepted under a policy');
  });

  it('denies a repeated key and names it (escaped spelling included)', async () => {
    policyActive = true;
    const body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","na\\u006de":"delete_all"}}';
    const error = expectDenied(await post(body));
    expect(error.data['key']).toBe('name');
    expect(error.message).toBe('a JSON object repeats a key; ambiguous requests are denied');
  });

  it('caps the key it reports at 64 characters', async () => {
    policyActive = true;
    const key = 'k'.repeat(200);
    const error = expectDenied(await post(`{"${key}":1,"${key}":2}`));
    expect(error.data['key']).toBe('k'.repeat(64));
  });

  it('checks application/*+json bodies too', async () => {
    policyActive = true;
    expectDenied(await post('{"a":1,"a":2}', 'application/vnd.api+json'));
  });

  it('checks a UTF-8 body with multi-byte characters and a BOM', async () => {
    policyActive = true;
    expectDenied(await post(Buffer.from('\ufeff{"é😀":1,"é😀":2}', 'utf8'), 'application/json; charset=utf-8'));
    expect((await post(Buffer.from('{"é😀":1,"e😀":2}', 'utf8'))).status).toBe(200);
  });
});

describe('without a policy', () => {
  it('lets batches and repeated keys through', async () => {
    policyActive = false;
    expect((await post(`[${call}]`)).status).toBe(200);
    expect((await post('{"a":1,"a":2}')).json).toEqual({ passed: true, body: { a: 2 } });
    policyActive = true;
  });
});

describe('known issues', () => {
  // body-parser decodes any `charset=utf-*` (UTF-16 via iconv-lite), but the duplicate
  // scan reads the raw bytes as UTF-8. In UTF-16LE every ASCII character is followed by a
  // NUL, so the scanner's backslash skip eats the NUL instead of the escaped quote, its
  // string tracking flips, and the repeated key below is never seen. Fix: decode the raw
  // body with the request's charset (or refuse charsets other than UTF-8 under a policy).
  it('a repeated key in a UTF-16LE body is denied', async () => {
    policyActive = true;
    const text = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"v":"\\"","name":"echo","name":"delete_all"}}';
    const result = await post(Buffer.from(text, 'utf16le'), 'application/json; charset=utf-16le');
    expect(result.json['passed']).toBeUndefined();
    expect(result.status).toBe(ERROR_TABLE.policy_denied.status);
  });
});
