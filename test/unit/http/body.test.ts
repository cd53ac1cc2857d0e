/**
 * The one body reader (src/http/body.ts) on real requests: a node:http server on a random
 * port hands each request to readJsonBody and answers with what it read or the error.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { ERROR_TABLE } from '../../../src/errors.js';
import { readJsonBody } from '../../../src/http/body.js';
import { writeError } from '../../../src/http/respond.js';

const LIMIT = 1000;
let server: Server;
let port: number;
let strict = true;

beforeAll(async () => {
  server = createServer((req, res) => {
    readJsonBody(req, { limitBytes: LIMIT, strict }).then(
      (body) => res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ passed: true, body: body?.value })),
      (error: unknown) => writeError(res, error),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

interface Answer {
  status: number;
  json: Record<string, any>;
}

function post(body: string | Buffer, headers: Record<string, string> = {}, chunked = false): Promise<Answer> {
  const bytes = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const framing = chunked ? { 'Transfer-Encoding': 'chunked' } : { 'Content-Length': String(bytes.length) };
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, method: 'POST', agent: false, headers: { 'Content-Type': 'application/json', ...framing, ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, any> }));
      },
    );
    req.on('error', reject);
    if (chunked) {
      req.write(bytes.subarray(0, bytes.length >> 1));
      req.end(bytes.subarray(bytes.length >> 1));
    } else req.end(bytes);
  });
}

function expectError(answer: Answer, code: keyof typeof ERROR_TABLE): Record<string, any> {
  expect({ status: answer.status, code: answer.json.error?.data?.code }).toEqual({ status: ERROR_TABLE[code].status, code });
  return answer.json.error;
}

const call = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{}}}';

describe('reading', () => {
  it('parses a JSON object, with a Content-Length or chunked', async () => {
    for (const chunked of [false, true]) expect(await post(call, {}, chunked)).toMatchObject({ status: 200, json: { body: { id: 1 } } });
  });

  it('drops a leading byte order mark and reads multi-byte UTF-8', async () => {
    expect((await post(Buffer.from('\ufeff{"é😀":1}', 'utf8'))).json.body).toEqual({ 'é😀': 1 });
  });

  it('reads gzip and deflate bodies', async () => {
    expect((await post(gzipSync(call), { 'Content-Encoding': 'gzip' })).json.body.id).toBe(1);
  });
});

describe('refusals', () => {
  it('415 for another Content-Type, a charset other than UTF-8, or an unknown encoding', async () => {
    expect(expectError(await post(call, { 'Content-Type': 'text/plain' }), 'unsupported_media_type').message).toContain(
      'Content-Type must be application/json',
    );
    expect(
      expectError(await post(Buffer.from(call, 'utf16le'), { 'Content-Type': 'application/json; charset=utf-16le' }), 'unsupported_media_type').message,
    ).toContain('UTF-8');
    expectError(await post(call, { 'Content-Encoding': 'br' }), 'unsupported_media_type');
  });

  it('400 for invalid UTF-8, invalid JSON, or JSON that is not an object or array', async () => {
    expect(expectError(await post(Buffer.from([0x7b, 0xff, 0x7d])), 'parse_error').message).toContain('UTF-8');
    expectError(await post('{"jsonrpc":'), 'parse_error');
    expectError(await post('42'), 'parse_error');
    expectError(await post(''), 'parse_error');
  });

  it('413 past the limit: declared, sent chunked, or after decompression', async () => {
    const big = JSON.stringify({ pad: 'x'.repeat(LIMIT) });
    expect(expectError(await post(big), 'payload_too_large').data.limitBytes).toBe(LIMIT);
    expectError(await post(big, {}, true), 'payload_too_large');
    expectError(await post(gzipSync(JSON.stringify({ pad: 'y'.repeat(100 * LIMIT) })), { 'Content-Encoding': 'gzip' }), 'payload_too_large');
  });
});

describe('under a policy (strict)', () => {
  function expectDenied(answer: Answer): Record<string, any> {
    const error = expectError(answer, 'policy_denied');
    expect(error.data).toMatchObject({ reason: 'malformed_request', rule: 'shape' });
    return error;
  }

  it('denies a batch array', async () => {
    strict = true;
    expect(expectDenied(await post(`[${call}]`)).message).toBe('batch requests are not accepted under a policy');
  });

  it('denies a repeated key and names it (escaped spelling included), capped at 64 characters', async () => {
    strict = true;
    const error = expectDenied(await post('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","na\\u006de":"delete_all"}}'));
    expect(error.data.key).toBe('name');
    const key = 'k'.repeat(200);
    expect(expectDenied(await post(`{"${key}":1,"${key}":2}`)).data.key).toBe('k'.repeat(64));
    expectDenied(await post(Buffer.from('\ufeff{"é😀":1,"é😀":2}', 'utf8')));
    expect((await post(Buffer.from('{"é😀":1,"e😀":2}', 'utf8'))).status).toBe(200);
  });

  it('lets batches and repeated keys through without a policy', async () => {
    strict = false;
    expect((await post(`[${call}]`)).status).toBe(200);
    expect((await post('{"a":1,"a":2}')).json).toEqual({ passed: true, body: { a: 2 } });
    strict = true;
  });
});
