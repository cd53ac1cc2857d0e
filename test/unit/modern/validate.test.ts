/**
 * The `Mcp-Param-*` checks of a 2026-07-28 tools/call: which headers a tool's schema
 * declares, and that each one is present and carries its argument (plain or base64-encoded).
 */
import { describe, expect, it } from '@jest/globals';
import type { IncomingHttpHeaders } from 'node:http';
import { WardenError } from '../../../src/errors.js';
import { headerParamsOf, validateModern } from '../../../src/modern/validate.js';

const SCHEMA = {
  type: 'object',
  properties: {
    region: { type: 'string', 'x-mcp-header': 'Region' },
    count: { type: 'integer', 'x-mcp-header': 'Count' },
    filter: { type: 'object', 'x-mcp-header': 'Filter' },
    plain: { type: 'string' },
    badName: { type: 'string', 'x-mcp-header': 'Bad Name' },
  },
};
const PARAMS = headerParamsOf(SCHEMA);

function call(args: Record<string, unknown>, params: Record<string, string>): () => unknown {
  const message = {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: {
      name: 'search',
      arguments: args,
      _meta: { 'io.modelcontextprotocol/protocolVersion': '2026-07-28', 'io.modelcontextprotocol/clientCapabilities': {} },
    },
  };
  const headers: IncomingHttpHeaders = { 'mcp-protocol-version': '2026-07-28', 'mcp-method': 'tools/call', 'mcp-name': 'search' };
  for (const [name, value] of Object.entries(params)) headers[`mcp-param-${name.toLowerCase()}`] = value;
  return () => validateModern(message, headers, () => PARAMS);
}

const base64 = (text: string) => `=?base64?${Buffer.from(text, 'utf8').toString('base64')}?=`;

function mismatchOf(run: () => unknown): string | undefined {
  try {
    run();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(WardenError);
    expect((error as WardenError).code).toBe('header_mismatch');
    return (error as WardenError).message;
  }
}

describe('headerParamsOf', () => {
  it('lists the top-level properties with a valid x-mcp-header name', () => {
    expect(PARAMS).toEqual([
      { header: 'Region', property: 'region' },
      { header: 'Count', property: 'count' },
      { header: 'Filter', property: 'filter' },
    ]);
  });
});

describe('Mcp-Param-* headers', () => {
  it('accept the argument, plain or base64-encoded, and numbers as text', () => {
    expect(mismatchOf(call({ region: 'eu-west', count: 3 }, { Region: 'eu-west', Count: '3' }))).toBeUndefined();
    expect(mismatchOf(call({ region: 'zürich' }, { Region: base64('zürich') }))).toBeUndefined();
  });

  it('need no header for an argument that is absent', () => {
    expect(mismatchOf(call({ plain: 'x' }, {}))).toBeUndefined();
  });

  it('refuse a missing header, naming it and the argument', () => {
    expect(mismatchOf(call({ region: 'eu' }, {}))).toContain('the required Mcp-Param-Region header is absent (argument region)');
  });

  it('refuse a header that differs from its argument', () => {
    expect(mismatchOf(call({ region: 'eu' }, { Region: 'us' }))).toContain('Mcp-Param-Region does not match argument region');
    expect(mismatchOf(call({ count: 3 }, { Count: '4' }))).toContain('Mcp-Param-Count does not match argument count');
  });

  it('refuse a header whose base64 encoding is bad, whatever the argument', () => {
    expect(mismatchOf(call({ region: 'eu' }, { Region: '=?base64?abc?=' }))).toContain('Mcp-Param-Region does not match');
    expect(mismatchOf(call({ count: 3 }, { Count: '=?base64?abc?=' }))).toContain('Mcp-Param-Count does not match');
    // No header can carry an object: a badly encoded one must not pass for it.
    expect(mismatchOf(call({ filter: { a: 1 } }, { Filter: '=?base64?abc?=' }))).toContain('Mcp-Param-Filter does not match');
  });
});
