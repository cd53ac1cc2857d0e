/**
 * The audit trail written by a real gateway: one scenario (a failed login, sessions over
 * both transports, allowed / denied / rate-limited / redacted tool calls, session ends,
 * child spawns and exits), then the file is read after the gateway closed. Every event
 * carries its documented fields; no line carries a secret, a token, an ENV_* value, a raw
 * session id or a redacted value; the HMAC chain verifies, and a tampered line is found.
 * Waits on events or polls with deadlines; never sleeps for readiness.
 */
import { afterEach, describe, expect, it, jest } from '@jest/globals';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { verifyAuditFile } from '../../src/audit/verify.js';
import { ERROR_TABLE } from '../../src/errors.js';
import { hashSessionId } from '../../src/transports/sessions.js';
import { connectClient, fixtureEntry, initializeBody, MCP_ACCEPT, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const SMS = 'sms';
const marker = (label: string) => `${label}-${randomBytes(10).toString('hex')}`;
const USER_TOKEN = marker('user-token');
const ADMIN_TOKEN = marker('admin-token');
const WRONG_TOKEN = marker('wrong-token');
const HMAC_KEY = marker('audit-hmac-key');
const ENV_USER = marker('env-user-value');
const ENV_ADMIN = marker('env-admin-value');
const BODY = marker('body');
const TO = '+15551234567';
const FAKE_SECRETS = ['AKIAIOSFODNN7EXAMPLE', ['ghp', 'FAKEfakeTOKENtoken0123456789abcdefAB'].join('_'), 'eyJhbGciOiJIUzI1NiJ9', 'eyJzdWIiOiIxMjMifQ'];

type Json = Record<string, any>;

const gateways: TestGateway[] = [];

afterEach(async () => {
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

function argDigest(args: unknown): { argBytes: number; argHash: string } {
  const text = JSON.stringify(args ?? {});
  return { argBytes: Buffer.byteLength(text), argHash: createHash('sha256').update(text).digest('hex').slice(0, 32) };
}

async function auditLines(file: string): Promise<string[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text.split('\n').filter((line) => line.length > 0);
}

async function rejection(call: Promise<unknown>): Promise<McpError> {
  try {
    await call;
  } catch (error) {
    if (error instanceof McpError) return error;
    throw error;
  }
  throw new Error('expected an McpError');
}

function setup() {
  const dir = mkdtempSync(join(tmpdir(), 'warden-audit-trail-'));
  const policy = JSON.parse(readFileSync(join(process.cwd(), 'examples/policy.sms.json'), 'utf8')) as Json;
  policy.roles.user.rateLimits.post_sms_1_preview = { calls: 1, perSeconds: 60 };
  const policyFile = join(dir, 'policy.json');
  writeFileSync(policyFile, JSON.stringify(policy));
  const clientsFile = join(dir, 'clients.json');
  writeFileSync(
    clientsFile,
    JSON.stringify({
      clients: [
        { id: 'sms-user', role: 'user', token: USER_TOKEN },
        { id: 'sms-admin', role: 'admin', token: ADMIN_TOKEN },
      ],
    }),
  );
  return { dir, policyFile, clientsFile, auditFile: join(dir, 'audit.jsonl') };
}

describe('audit trail of a real gateway', () => {
  it('records every event with its fields, leaks nothing, and verifies until a line is tampered with', async () => {
    const { policyFile, clientsFile, auditFile } = setup();
    const gw = await startGateway({ [SMS]: fixtureEntry('sms-server.mjs') }, { policyFile, clientsFile, auditFile, auditHmacKey: HMAC_KEY });
    gateways.push(gw);

    // 1. A failed login.
    const refused = await fetch(gw.url(SMS, 'mcp'), {
      method: 'POST',
      headers: { ...MCP_ACCEPT, Authorization: `Bearer ${WRONG_TOKEN}` },
      body: JSON.stringify(initializeBody()),
    });
    expect(refused.status).toBe(ERROR_TABLE.unauthorized.status);
    await refused.text();

    // 2. The user over SSE: allowed, denied and rate-limited calls.
    const sse = await connectClient(gw, SMS, 'sse', { Authorization: `Bearer ${USER_TOKEN}`, ENV_SMS_API_KEY: ENV_USER });
    const sseId = gw.gateway.sessions.all()[0]!.id;
    const allowedArgs = { to: TO, body: BODY };
    const ok = await sse.client.callTool({ name: 'post_sms_1_preview', arguments: allowedArgs });
    expect(ok.isError).toBeFalsy();
    const deniedArgs = { to: TO, body: `${BODY}-denied` };
    const denied = await rejection(sse.client.callTool({ name: 'post_sms_2_send', arguments: deniedArgs }));
    expect(denied.code).toBe(ERROR_TABLE.policy_denied.rpc);
    const limitedArgs = { to: TO, body: `${BODY}-again` };
    const limited = await rejection(sse.client.callTool({ name: 'post_sms_1_preview', arguments: limitedArgs }));
    expect(limited.code).toBe(ERROR_TABLE.rate_limited.rpc);
    await sse.client.close();

    // 3. The admin over Streamable HTTP: a result with secrets in it.
    const mcp = await connectClient(gw, SMS, 'mcp', { Authorization: `Bearer ${ADMIN_TOKEN}`, ENV_SMS_API_KEY: ENV_ADMIN });
    const mcpId = (mcp.transport as StreamableHTTPClientTransport).sessionId!;
    const account = await mcp.client.callTool({ name: 'get_sms_8_account', arguments: {} });
    expect(JSON.stringify(account)).toContain('[REDACTED:');
    await (mcp.transport as StreamableHTTPClientTransport).terminateSession();
    await mcp.client.close();

    // Both children exit; their exit lines are written before the gateway closes.
    await waitFor(async () => (await auditLines(auditFile)).filter((l) => l.includes('"event":"exit"')).length === 2, {
      message: 'two exit events in the audit file',
    });
    await gw.close();

    const lines = await auditLines(auditFile);
    const entries = lines.map((line) => JSON.parse(line) as Json);
    const of = (event: string) => entries.filter((e) => e.event === event);

    // Every line: ts, consecutive seq, prev.
    entries.forEach((entry, i) => {
      expect(entry.ts).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      expect(entry.seq).toBe(entries[0]!.seq + i);
      expect(entry.prev).toMatch(/^[0-9a-f]{64}$/);
    });
    expect(entries[0]!.prev).toBe('0'.repeat(64));

    expect(of('auth_failure')).toEqual([
      expect.objectContaining({ reason: 'invalid bearer token', path: `/${SMS}/mcp`, address: expect.stringMatching(/127\.0\.0\.1$/) }),
    ]);

    const sseHash = hashSessionId(sseId);
    const mcpHash = hashSessionId(mcpId);
    const opens = of('session_open');
    expect(opens).toEqual([
      expect.objectContaining({ session: sseHash, command: SMS, transport: 'sse', clientId: 'sms-user', role: 'user', pid: expect.any(Number) }),
      expect.objectContaining({ session: mcpHash, command: SMS, transport: 'streamable', clientId: 'sms-admin', role: 'admin', pid: expect.any(Number) }),
    ]);
    const pids = opens.map((o) => o.pid as number);
    expect(of('spawn')).toEqual(pids.map((pid) => expect.objectContaining({ command: SMS, pid })));
    const exits = of('exit');
    expect(exits.map((e) => e.pid).sort()).toEqual([...pids].sort());
    for (const exit of exits) expect(exit).toEqual(expect.objectContaining({ command: SMS, reason: expect.stringMatching(/^(stopped|exited)$/) }));

    const closes = of('session_close');
    expect(closes.map((c) => c.session).sort()).toEqual([sseHash, mcpHash].sort());
    for (const close of closes) expect(close.durationMs).toBeGreaterThanOrEqual(0);

    const calls = of('tool_call');
    const base = { command: SMS, clientId: 'sms-user', role: 'user', session: sseHash };
    expect(calls).toHaveLength(4);
    expect(calls).toEqual([
      expect.objectContaining({
        ...base,
        tool: 'post_sms_1_preview',
        ...argDigest(allowedArgs),
        decision: 'allowed',
        rule: 'roles.user.tools.allow "post_sms_1_preview"',
        isError: false,
        latencyMs: expect.any(Number),
        redactions: 0,
      }),
      expect.objectContaining({
        ...base,
        tool: 'post_sms_2_send',
        ...argDigest(deniedArgs),
        decision: 'denied',
        rule: 'policy.default',
        reason: 'tool_denied',
      }),
      expect.objectContaining({
        ...base,
        tool: 'post_sms_1_preview',
        ...argDigest(limitedArgs),
        decision: 'rate-limited',
        rule: 'roles.user.rateLimits "post_sms_1_preview"',
        retryAfterMs: expect.any(Number),
      }),
      expect.objectContaining({
        command: SMS,
        clientId: 'sms-admin',
        role: 'admin',
        session: mcpHash,
        tool: 'get_sms_8_account',
        ...argDigest({}),
        decision: 'allowed',
        rule: 'roles.admin.default',
        isError: false,
        latencyMs: expect.any(Number),
        redactions: 3,
      }),
    ]);
    for (const call of calls) {
      expect(call.session).toMatch(/^[0-9a-f]{16}$/);
      expect(call.argHash).toMatch(/^[0-9a-f]{32}$/);
      expect(call).not.toHaveProperty('arguments'); // audit.includeArguments is false
    }
    const rateLimited = calls.find((c) => c.decision === 'rate-limited')!;
    expect(rateLimited.retryAfterMs).toBeGreaterThan(0);

    // Nothing secret on any line.
    const forbidden = [TEST_SECRET, USER_TOKEN, ADMIN_TOKEN, WRONG_TOKEN, HMAC_KEY, ENV_USER, ENV_ADMIN, BODY, sseId, mcpId, ...FAKE_SECRETS];
    for (const line of lines) for (const value of forbidden) expect({ line, leaked: line.includes(value) }).toEqual({ line, leaked: false });

    // The HMAC chain verifies with the key, and not as a plain SHA-256 chain.
    expect(await verifyAuditFile(auditFile, { hmacKey: HMAC_KEY })).toEqual({ ok: true, lines: lines.length, head: 'matches', warnings: [] });
    expect(await verifyAuditFile(auditFile)).toMatchObject({ ok: false, line: 2 });

    // Tamper with a middle line: the next line's prev no longer matches it.
    const middle = Math.floor(lines.length / 2); // 0-based index; line number middle + 1
    const edited = JSON.parse(lines[middle]!) as Json;
    edited.ts = '2000-01-01T00:00:00.000Z';
    const tampered = [...lines];
    tampered[middle] = JSON.stringify(edited);
    expect(tampered[middle]).not.toBe(lines[middle]);
    writeFileSync(auditFile, `${tampered.join('\n')}\n`);
    expect(await verifyAuditFile(auditFile, { hmacKey: HMAC_KEY })).toEqual({
      ok: false,
      line: middle + 2,
      reason: `chain broken (prev does not match line ${middle + 1})`,
      lines: lines.length,
    });
  });

  it('a gateway reopening a trail whose newest records were removed logs an error and records audit_gap first', async () => {
    const { auditFile } = setup();
    const settings = { auditFile, auditHmacKey: HMAC_KEY };
    const first = await startGateway({ [SMS]: fixtureEntry('sms-server.mjs') }, settings);
    gateways.push(first);
    for (let i = 0; i < 3; i += 1) {
      const res = await fetch(`${first.base}/status`, { headers: { Authorization: `Bearer ${WRONG_TOKEN}` } });
      expect(res.status).toBe(401);
      await res.text();
    }
    await first.close();
    const written = await auditLines(auditFile);
    expect(written.length).toBeGreaterThanOrEqual(3);
    // Stopped gateway: someone removes the two newest records.
    const kept = written.slice(0, -2);
    writeFileSync(auditFile, kept.map((line) => `${line}\n`).join(''));

    const second = await startGateway({ [SMS]: fixtureEntry('sms-server.mjs') }, settings);
    gateways.push(second);
    const errors = second.logs.map((line) => JSON.parse(line) as Json).filter((entry) => entry.level === 'error');
    expect(errors).toEqual([expect.objectContaining({ event: 'audit_gap', message: expect.stringContaining('2 record(s) missing at the end') })]);
    await second.close();

    const entries = (await auditLines(auditFile)).map((line) => JSON.parse(line) as Json);
    expect(entries[kept.length]).toMatchObject({
      seq: kept.length + 1,
      event: 'audit_gap',
      reason: 'records missing at the end',
      missing: 2,
      expected: { seq: written.length },
      found: { seq: kept.length },
    });
    expect(await verifyAuditFile(auditFile, { hmacKey: HMAC_KEY })).toEqual({
      ok: false,
      line: kept.length + 1,
      reason: 'the gateway recorded a gap in the trail here (records missing at the end)',
      lines: kept.length + 1,
    });
  });

  it('auditStderr writes the same kind of line to stderr, without the token', async () => {
    const writes: string[] = [];
    const spy = jest.spyOn(process.stderr, 'write').mockImplementation(((chunk: string | Uint8Array) => {
      writes.push(typeof chunk === 'string' ? chunk : Buffer.from(chunk).toString('utf8'));
      return true;
    }) as typeof process.stderr.write);
    try {
      const gw = await startGateway({ [SMS]: fixtureEntry('sms-server.mjs') }, { auditStderr: true });
      gateways.push(gw);
      const res = await fetch(`${gw.base}/status`, { headers: { Authorization: `Bearer ${WRONG_TOKEN}` } });
      expect(res.status).toBe(401);
      await res.text();
      const line = await waitFor(() => writes.find((w) => w.includes('"event":"auth_failure"')), { message: 'an auth_failure line on stderr' });
      const entry = JSON.parse(line) as Json;
      expect(entry).toMatchObject({ event: 'auth_failure', reason: 'invalid bearer token', path: '/status', prev: '0'.repeat(64) });
      expect(line).not.toContain(WRONG_TOKEN);
      expect(line).not.toContain(TEST_SECRET);
    } finally {
      spy.mockRestore();
    }
  });
});
