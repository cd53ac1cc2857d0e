/**
 * The error table against the MCP specification (2026-07-28): the range -32020..-32099 is the
 * specification's, and only its defined codes appear there, with its meanings; nothing new
 * uses -32000..-32019 (only -32001, "session not found", the SDK's own convention); every
 * other gateway code lies outside the range JSON-RPC and MCP reserve.
 */
import { describe, expect, it } from '@jest/globals';
import { ProtocolErrorCode } from '@modelcontextprotocol/client';
import { ERROR_TABLE, errorBody, WardenError, type ErrorCodeName } from '../../src/errors.js';

const STANDARD: Record<number, string> = {
  [-32700]: 'parse error',
  [-32600]: 'invalid request',
  [-32601]: 'method not found',
  [-32602]: 'invalid params',
  [-32603]: 'internal error',
};
const SPEC_MEANING: Record<number, ErrorCodeName> = {
  [-32020]: 'header_mismatch',
  [-32021]: 'missing_client_capability',
  [-32022]: 'unsupported_protocol_version',
};

describe('ERROR_TABLE', () => {
  const entries = Object.entries(ERROR_TABLE) as [ErrorCodeName, { status: number; rpc: number }][];

  it('uses the specification range -32020..-32099 only for its defined codes, with their meanings', () => {
    for (const [name, { rpc }] of entries) {
      if (rpc <= -32020 && rpc >= -32099) expect({ name, rpc }).toEqual({ name: SPEC_MEANING[rpc], rpc });
    }
  });

  it('agrees with the codes the v2 SDK gives the specification errors', () => {
    expect(ERROR_TABLE.missing_client_capability.rpc).toBe(ProtocolErrorCode.MissingRequiredClientCapability);
    expect(ERROR_TABLE.unsupported_protocol_version.rpc).toBe(ProtocolErrorCode.UnsupportedProtocolVersion);
    expect(ERROR_TABLE.header_mismatch.rpc).toBe(-32020); // the schema's HEADER_MISMATCH
    expect(ERROR_TABLE.method_not_found.rpc).toBe(ProtocolErrorCode.MethodNotFound);
  });

  it('uses nothing in -32019..-32000 but -32001 (session not found)', () => {
    for (const [name, { rpc }] of entries) if (rpc <= -32000 && rpc >= -32019) expect({ name, rpc }).toEqual({ name: 'session_not_found', rpc: -32001 });
  });

  it('keeps every other code a standard JSON-RPC code or outside -32768..-32000', () => {
    for (const [name, { rpc }] of entries) {
      const reserved = rpc >= -32768 && rpc <= -32000;
      if (!reserved) continue;
      const allowed = STANDARD[rpc] !== undefined || SPEC_MEANING[rpc] !== undefined || rpc === -32001;
      expect({ name, rpc, allowed }).toEqual({ name, rpc, allowed: true });
    }
  });

  it('gives each gateway code one meaning (Host and Origin refusals share one)', () => {
    const own = entries.filter(([, { rpc }]) => rpc > -32000 || rpc < -32768);
    const byCode = new Map<number, string[]>();
    for (const [name, { rpc }] of own) byCode.set(rpc, [...(byCode.get(rpc) ?? []), name]);
    for (const [, names] of byCode) if (names.length > 1) expect(names.sort()).toEqual(['forbidden_host', 'forbidden_origin']);
  });

  it('writes the body with the stable name in data.code', () => {
    expect(errorBody(new WardenError('unsupported_protocol_version', 'x', { data: { supported: ['2026-07-28'] } }), 3)).toEqual({
      jsonrpc: '2.0',
      error: { code: -32022, message: 'x', data: { code: 'unsupported_protocol_version', supported: ['2026-07-28'] } },
      id: 3,
    });
  });
});
