/**
 * The one assertion of a refusal: the HTTP status, a JSON content type, and the exact
 * JSON-RPC error body with its stable `data.code` (and its JSON-RPC code from the table).
 */
import { expect } from '@jest/globals';
import { ERROR_TABLE, type ErrorCodeName } from '../../src/errors.js';

export interface RejectionBody {
  jsonrpc: '2.0';
  error: { code: number; message: string; data: { code: string } & Record<string, unknown> };
  id: string | number | null;
}

/** What the assertion reads of an answer: status, body text, and a header lookup. */
export interface Answer {
  readonly status: number;
  readonly text: string;
  readonly contentType: string | undefined;
}

/** Asserts the refusal `code` with `status`; returns the parsed body. `id` is the request's (null for HTTP rejections). */
export function expectRejection(answer: Answer, status: number, code: ErrorCodeName, id: string | number | null = null): RejectionBody {
  let body: RejectionBody | undefined;
  try {
    body = JSON.parse(answer.text) as RejectionBody;
  } catch {
    body = undefined;
  }
  // One combined check first, so a failure shows status and code together.
  expect({ status: answer.status, code: body?.error?.data?.code }).toEqual({ status, code });
  expect(ERROR_TABLE[code].status).toBe(status);
  expect(answer.contentType).toMatch(/^application\/json/);
  expect(body).toEqual({
    jsonrpc: '2.0',
    error: { code: ERROR_TABLE[code].rpc, message: expect.any(String), data: expect.objectContaining({ code }) },
    id,
  });
  return body!;
}
