/**
 * The tool policy end to end: the seed example (examples/policy.sms.json) with a user and an
 * admin client over both transports, session binding to the principal, encodings that try
 * to slip past the engine, paginated lists and list_changed, shadow mode, hot reload,
 * /status, and per-tool rate limits. Against test/fixtures/leaky-server.mjs: resource URI
 * spellings that resolve elsewhere, and redaction of errors, lists, prompts, completions
 * and task results (with foreign tasks refused).
 *
 * The sms server runs as test/fixtures/sms-tap-server.mjs (sms-server.mjs plus a stderr tap
 * that logs every tools/call it reads), so "never reached the child" is checked, not
 * assumed: a later call's tap line proves that an earlier call, had it been forwarded,
 * would already be logged.
 * Waits on events or polls with deadlines; never sleeps for readiness.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  CallToolResultSchema,
  CreateTaskResultSchema,
  ElicitRequestSchema,
  ListResourceTemplatesResultSchema,
  ListTasksResultSchema,
  LoggingMessageNotificationSchema,
  McpError,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import { ERROR_TABLE } from '../../src/errors.js';
import { connectClient, fixtureEntry, startGateway, type Kind, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';

const KINDS: Kind[] = ['sse', 'mcp'];
const SMS = 'sms';
const SEED_FILE = join(process.cwd(), 'examples/policy.sms.json');
const USER_TOKEN = `user-token-${randomBytes(12).toString('hex')}`;
const ADMIN_TOKEN = `admin-token-${randomBytes(12).toString('hex')}`;
const TO = '+15551234567';
const ALLOWED_FOR_USER = ['post_sms_1_preview', 'post_sms_3_messages'];
const ALL_SMS_TOOLS = [
  'delete_sms_6_message',
  'get_sms_4_status',
  'get_sms_5_inbox',
  'get_sms_8_account',
  'post_sms_1_preview',
  'post_sms_2_send',
  'post_sms_3_messages',
  'post_sms_7_bulk',
];
/** The fake secrets get_sms_8_account returns (see test/fixtures/sms-server.mjs). */
const FAKE_SECRETS = ['AKIAIOSFODNN7EXAMPLE', ['ghp', 'FAKEfakeTOKENtoken0123456789abcdefAB'].join('_'), 'eyJhbGciOiJIUzI1NiJ9'];

type Json = Record<string, any>;

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

const gateways: TestGateway[] = [];
const opened: (() => Promise<void>)[] = [];

afterEach(async () => {
  await Promise.allSettled(opened.splice(0).map((close) => close()));
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

function seedPolicy(): Json {
  return JSON.parse(readFileSync(SEED_FILE, 'utf8')) as Json;
}

interface Setup {
  readonly dir: string;
  readonly policyFile: string;
  readonly clientsFile: string;
}

/** A temp dir holding `policy` (as policy.json) and a clients file with the user and admin. */
function setup(policy: Json = seedPolicy()): Setup {
  const dir = mkdtempSync(join(tmpdir(), 'warden-policy-'));
  const policyFile = join(dir, 'policy.json');
  const clientsFile = join(dir, 'clients.json');
  writeFileSync(policyFile, JSON.stringify(policy, null, 2));
  writeFileSync(
    clientsFile,
    JSON.stringify({
      clients: [
        { id: 'sms-user', role: 'user', token: USER_TOKEN },
        { id: 'sms-admin', role: 'admin', token: ADMIN_TOKEN },
      ],
    }),
  );
  return { dir, policyFile, clientsFile };
}

async function start(settings: Parameters<typeof startGateway>[1], commands: Record<string, unknown> = { [SMS]: fixtureEntry('sms-tap-server.mjs') }) {
  const gw = await startGateway(commands, settings);
  gateways.push(gw);
  return gw;
}

/** An SDK client on `key`, authenticated with `token`; ended (DELETE for Streamable) after the test. */
async function open(gw: TestGateway, kind: Kind, token: string, key = SMS): Promise<Client> {
  const { client, transport } = await connectClient(gw, key, kind, { Authorization: `Bearer ${token}` });
  opened.push(async () => {
    if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession().catch(() => undefined);
    await client.close();
  });
  return client;
}

/** The McpError a call rejects with (fails the test if it resolves or throws something else). */
async function rejection(call: Promise<unknown>): Promise<McpError> {
  let result: unknown;
  try {
    result = await call;
  } catch (error) {
    if (error instanceof McpError) return error;
    throw error;
  }
  throw new Error(`expected an McpError, got a result: ${JSON.stringify(result)}`);
}

function textOf(result: unknown): string {
  const content = (result as { content?: { type: string; text?: string }[] }).content ?? [];
  return content.map((c) => c.text ?? '').join('');
}

/** What the sms child read, from its stderr tap: `<tool> id=<id>` per tools/call, in order. */
function tapped(gw: TestGateway): string[] {
  const out: string[] = [];
  for (const raw of gw.logs) {
    const entry = JSON.parse(raw) as { message?: string; line?: string };
    if (entry.message !== 'child stderr' || typeof entry.line !== 'string') continue;
    const at = entry.line.indexOf('tap tools/call ');
    if (at !== -1) out.push(entry.line.slice(at + 'tap tools/call '.length));
  }
  return out;
}

function tappedTool(gw: TestGateway, tool: string): number {
  return tapped(gw).filter((line) => line.startsWith(`${tool} `)).length;
}

/**
 * Sends one more allowed call on `client` and waits for the child to log it. Calls sent
 * earlier on the same session would have been read (and logged) before it.
 */
async function fence(gw: TestGateway, client: Client, tool = 'post_sms_1_preview'): Promise<void> {
  const before = tappedTool(gw, tool);
  const result = await client.callTool({ name: tool, arguments: { to: TO, body: 'fence' } });
  expect(result.isError).toBeFalsy();
  await waitFor(() => tappedTool(gw, tool) > before, { message: `the child to log the ${tool} fence call` });
}

function expectPolicyDenied(error: McpError, data: Json): void {
  expect(error.code).toBe(ERROR_TABLE.policy_denied.rpc);
  expect(error.data).toMatchObject({ code: 'policy_denied', ...data });
}

async function readAudit(file: string): Promise<Json[]> {
  const text = await readFile(file, 'utf8').catch(() => '');
  return text
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Json);
}

/** Replaces a file in one step, so a watcher polling it never reads it half-written. */
function replaceFile(path: string, text: string): void {
  const next = `${path}.next`;
  writeFileSync(next, text);
  renameSync(next, path);
}

const names = (list: { tools: { name: string }[] }) => list.tools.map((t) => t.name).sort();

// ---------------------------------------------------------------------------------------
// The seed example
// ---------------------------------------------------------------------------------------

describe.each(KINDS)('seed example policy over %s', (kind) => {
  it('the user lists and calls exactly the two allowed tools; denied calls never reach the child', async () => {
    const { policyFile, clientsFile } = setup();
    const gw = await start({ policyFile, clientsFile });
    const user = await open(gw, kind, USER_TOKEN);

    expect(names(await user.listTools())).toEqual(ALLOWED_FOR_USER);

    const sent = await user.callTool({ name: 'post_sms_3_messages', arguments: { to: TO, body: 'hello' } });
    expect(sent.isError).toBeFalsy();
    expect(textOf(sent)).toBe(`post_sms_3_messages ${JSON.stringify({ to: TO, body: 'hello' })}`);
    const preview = await user.callTool({ name: 'post_sms_1_preview', arguments: { to: TO, body: 'hello' } });
    expect(textOf(preview)).toBe(`post_sms_1_preview ${JSON.stringify({ to: TO, body: 'hello' })}`);

    for (const name of ['post_sms_2_send', 'delete_sms_6_message']) {
      const error = await rejection(user.callTool({ name, arguments: { to: TO, body: 'hello' } }));
      expectPolicyDenied(error, { reason: 'tool_denied', rule: 'policy.default', name });
    }

    const where = 'commands["sms"].arguments["post_sms_3_messages"]';
    const violations: [Record<string, unknown>, string][] = [
      [{ to: '5551234', body: 'hello' }, `${where}.args["to"].pattern`],
      [{ to: TO, body: 'read https://evil.example/x' }, `${where}.args["body"].notPattern`],
      [{ to: TO, body: 'hello', cc: '+15557654321' }, `${where}.additionalArgs`],
      [{ body: 'hello' }, `${where}.args["to"].required`],
    ];
    for (const [args, rule] of violations) {
      const error = await rejection(user.callTool({ name: 'post_sms_3_messages', arguments: args }));
      expectPolicyDenied(error, { reason: 'argument_rule', rule, name: 'post_sms_3_messages' });
    }

    await fence(gw, user);
    expect(tappedTool(gw, 'post_sms_2_send')).toBe(0);
    expect(tappedTool(gw, 'delete_sms_6_message')).toBe(0);
    expect(tappedTool(gw, 'post_sms_3_messages')).toBe(1); // only the valid one
  });

  it('the admin sees all 8 tools and gets get_sms_8_account with its secrets redacted', async () => {
    const { policyFile, clientsFile } = setup();
    const gw = await start({ policyFile, clientsFile });
    const admin = await open(gw, kind, ADMIN_TOKEN);

    expect(names(await admin.listTools())).toEqual(ALL_SMS_TOOLS);
    const account = await admin.callTool({ name: 'get_sms_8_account', arguments: {} });
    expect(account.isError).toBeFalsy();
    expect(textOf(account)).toBe(
      [
        'get_sms_8_account {}',
        'aws_access_key_id=[REDACTED:aws-access-key-id]',
        'github_token=[REDACTED:github-token]',
        'Authorization: Bearer [REDACTED:jwt]',
      ].join('\n'),
    );
    const wire = JSON.stringify(account);
    for (const secret of FAKE_SECRETS) expect(wire).not.toContain(secret);
    // The admin is not bound by the user's allow list, only by the argument rules of the command.
    const sent = await admin.callTool({ name: 'post_sms_2_send', arguments: { to: TO, body: 'hi' } });
    expect(textOf(sent)).toBe(`post_sms_2_send ${JSON.stringify({ to: TO, body: 'hi' })}`);
  });
});

// ---------------------------------------------------------------------------------------
// Sessions belong to the principal that opened them
// ---------------------------------------------------------------------------------------

describe.each(KINDS)('principal binding over %s', (kind) => {
  it("the user's session id with the admin's token is 404 and nothing reaches the child", async () => {
    const { policyFile, clientsFile } = setup();
    const gw = await start({ policyFile, clientsFile });
    const user = await open(gw, kind, USER_TOKEN);
    const [session] = gw.gateway.sessions.all();
    expect(session?.principal.clientId).toBe('sms-user');

    const url = kind === 'mcp' ? gw.url(SMS, 'mcp') : new URL(`${gw.url(SMS, 'messages').href}?sessionId=${encodeURIComponent(session!.id)}`);
    const res = await fetch(url, {
      method: 'POST',
      headers: {
        Authorization: `Bearer ${ADMIN_TOKEN}`,
        'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream',
        ...(kind === 'mcp' ? { 'Mcp-Session-Id': session!.id } : {}),
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 'admin-probe', method: 'tools/call', params: { name: 'get_sms_8_account', arguments: {} } }),
    });
    expect(res.status).toBe(404);
    const body = (await res.json()) as Json;
    expect(body.error).toMatchObject({ code: ERROR_TABLE.session_not_found.rpc, data: { code: 'session_not_found' } });

    await fence(gw, user); // the user's session still works
    expect(tapped(gw).filter((line) => line.includes('"admin-probe"'))).toEqual([]);
    expect(tappedTool(gw, 'get_sms_8_account')).toBe(0);
    expect(gw.gateway.sessions.size).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------
// Encodings that could make the engine and the server read a request differently
// ---------------------------------------------------------------------------------------

describe.each(KINDS)('bypass encodings under a policy, over %s', (kind) => {
  async function withUserSession() {
    const { policyFile, clientsFile } = setup();
    const gw = await start({ policyFile, clientsFile });
    const user = await open(gw, kind, USER_TOKEN);
    const sessionId = gw.gateway.sessions.all()[0]!.id;
    const post = async (body: string) => {
      const url = kind === 'mcp' ? gw.url(SMS, 'mcp') : new URL(`${gw.url(SMS, 'messages').href}?sessionId=${encodeURIComponent(sessionId)}`);
      const res = await fetch(url, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${USER_TOKEN}`,
          'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream',
          ...(kind === 'mcp' ? { 'Mcp-Session-Id': sessionId } : {}),
        },
        body,
      });
      const text = await res.text();
      let json: Json | undefined;
      try {
        json = JSON.parse(text) as Json;
      } catch {
        json = undefined; // SSE answers 202 "Accepted"
      }
      return { status: res.status, text, json };
    };
    return { gw, user, post };
  }

  it('a JSON-RPC batch array is 403 policy_denied and is not forwarded', async () => {
    const { gw, user, post } = await withUserSession();
    const res = await post(
      JSON.stringify([
        { jsonrpc: '2.0', id: 11, method: 'tools/call', params: { name: 'post_sms_2_send', arguments: { to: TO, body: 'x' } } },
        { jsonrpc: '2.0', id: 12, method: 'tools/call', params: { name: 'post_sms_1_preview', arguments: {} } },
      ]),
    );
    expect(res.status).toBe(403);
    expect(res.json?.error).toMatchObject({
      code: ERROR_TABLE.policy_denied.rpc,
      data: { code: 'policy_denied', reason: 'malformed_request', rule: 'shape' },
    });
    await fence(gw, user);
    expect(tapped(gw).filter((line) => / id=1[12]$/.test(line))).toEqual([]);
  });

  it('a body repeating the "name" key is 403 and is not forwarded', async () => {
    const { gw, user, post } = await withUserSession();
    const res = await post('{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"post_sms_1_preview","name":"post_sms_2_send"}}');
    expect(res.status).toBe(403);
    expect(res.json?.error).toMatchObject({
      code: ERROR_TABLE.policy_denied.rpc,
      data: { code: 'policy_denied', reason: 'malformed_request', key: 'name' },
    });
    // The same key spelled with an escape is the same key.
    const escaped = await post('{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"post_sms_1_preview","n\\u0061me":"post_sms_2_send"}}');
    expect(escaped.status).toBe(403);
    await fence(gw, user);
    expect(tapped(gw).filter((line) => / id=[56]$/.test(line))).toEqual([]);
    expect(tappedTool(gw, 'post_sms_2_send')).toBe(0);
  });

  it('params as an array is refused and is not forwarded', async () => {
    const { gw, user, post } = await withUserSession();
    const res = await post(JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: ['post_sms_2_send', { to: TO }] }));
    // Not a JSON-RPC message: the gateway's bad_request on both transports.
    expect(res.status).toBe(400);
    expect(res.json?.error.code).toBe(ERROR_TABLE.bad_request.rpc);
    expect(res.json?.error.data?.code).toBe('bad_request');
    await fence(gw, user);
    expect(tapped(gw).filter((line) => / id=7$/.test(line))).toEqual([]);
    expect(tappedTool(gw, 'post_sms_2_send')).toBe(0);
  });

  // BUG: PolicyGuard.inbound returns FORWARD for every message without an `id` before the
  // engine runs, so a tools/call sent as a notification skips the policy (the engine's
  // "sent as a notification" check is never reached). Servers that do not check for an id
  // (like this fixture) run the denied tool.
  it('a tools/call sent as a notification is never forwarded', async () => {
    const { gw, user, post } = await withUserSession();
    const res = await post(
      JSON.stringify({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'post_sms_2_send', arguments: { to: TO, body: 'sneaky' } } }),
    );
    expect(res.status).toBeLessThan(500); // accepted (202) or refused; either way not forwarded
    await fence(gw, user);
    expect(tappedTool(gw, 'post_sms_2_send')).toBe(0);
  });
});

// ---------------------------------------------------------------------------------------
// Paginated lists and list_changed
// ---------------------------------------------------------------------------------------

describe.each(KINDS)('paginated tools/list under a policy, over %s', (kind) => {
  it('filters every page, keeps nextCursor, and filters the new set after list_changed', async () => {
    const { policyFile } = setup({ name: 'paged', tools: { deny: ['secret_*'] } });
    const gw = await start({ policyFile }, { paged: fixtureEntry('paged-server.mjs') });

    // Build the client by hand to see when the Streamable GET stream (where server
    // notifications go) is open; over SSE there is only one stream.
    let streamOpen!: () => void;
    const standaloneStream = new Promise<void>((resolve) => (streamOpen = resolve));
    let client: Client;
    if (kind === 'mcp') {
      const transport = new StreamableHTTPClientTransport(gw.url('paged', 'mcp'), {
        requestInit: { headers: gw.headers() },
        fetch: async (input, init) => {
          const res = await fetch(input, init);
          if ((init?.method ?? 'GET') === 'GET' && res.ok) streamOpen();
          return res;
        },
      });
      client = new Client({ name: 'warden-test', version: '1.0.0' });
      await client.connect(transport);
      opened.push(async () => {
        await transport.terminateSession().catch(() => undefined);
        await client.close();
      });
    } else {
      client = (await connectClient(gw, 'paged', 'sse')).client;
      opened.push(() => client.close());
      streamOpen();
    }
    let changed!: () => void;
    const listChanged = new Promise<void>((resolve) => (changed = resolve));
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => changed());

    const pages = async () => {
      const out: { tools: string[]; nextCursor: string | undefined }[] = [];
      let cursor: string | undefined;
      do {
        const page = await client.listTools(cursor === undefined ? {} : { cursor });
        out.push({ tools: page.tools.map((t) => t.name), nextCursor: page.nextCursor });
        cursor = page.nextCursor;
        if (out.length > 10) throw new Error('pagination does not end');
      } while (cursor !== undefined);
      return out;
    };

    expect(await pages()).toEqual([
      { tools: ['alpha_1'], nextCursor: 'page-0-2' },
      { tools: [], nextCursor: 'page-0-4' }, // every item denied: the page is empty, the cursor kept
      { tools: ['alpha_2', 'change'], nextCursor: undefined },
    ]);
    const denied = await rejection(client.callTool({ name: 'secret_1', arguments: {} }));
    expectPolicyDenied(denied, { reason: 'tool_denied', name: 'secret_1' });

    await standaloneStream;
    const result = await client.callTool({ name: 'change', arguments: {} });
    expect(textOf(result)).toBe('change ok (set 2)');
    await listChanged;

    expect(await pages()).toEqual([
      { tools: ['beta_1'], nextCursor: 'page-1-2' },
      { tools: ['beta_2', 'change'], nextCursor: 'page-1-4' },
      { tools: [], nextCursor: undefined },
    ]);
    const stillDenied = await rejection(client.callTool({ name: 'secret_4', arguments: {} }));
    expectPolicyDenied(stillDenied, { reason: 'tool_denied', name: 'secret_4' });
    expect(textOf(await client.callTool({ name: 'beta_1', arguments: {} }))).toBe('beta_1 ok (set 2)');
  });
});

// ---------------------------------------------------------------------------------------
// Shadow mode, hot reload, /status, rate limits
// ---------------------------------------------------------------------------------------

describe('shadow mode', () => {
  it('forwards what enforce would deny, does not filter lists, and audits shadow-denied', async () => {
    const { dir, policyFile, clientsFile } = setup({ ...seedPolicy(), mode: 'shadow' });
    const auditFile = join(dir, 'audit.jsonl');
    const gw = await start({ policyFile, clientsFile, auditFile });
    const user = await open(gw, 'mcp', USER_TOKEN);

    expect(names(await user.listTools())).toEqual(ALL_SMS_TOOLS);
    const sent = await user.callTool({ name: 'post_sms_2_send', arguments: { to: TO, body: 'hello' } });
    expect(sent.isError).toBeFalsy();
    expect(textOf(sent)).toBe(`post_sms_2_send ${JSON.stringify({ to: TO, body: 'hello' })}`);
    const badArgs = await user.callTool({ name: 'post_sms_3_messages', arguments: { to: 'nope', body: 'hello' } });
    expect(textOf(badArgs)).toBe(`post_sms_3_messages ${JSON.stringify({ to: 'nope', body: 'hello' })}`);

    const lines = await waitFor(
      async () => {
        const entries = await readAudit(auditFile);
        const calls = entries.filter((e) => e.event === 'tool_call' && e.decision === 'shadow-denied');
        return calls.length >= 2 ? calls : undefined;
      },
      { message: 'two shadow-denied tool_call audit lines' },
    );
    expect(lines).toEqual([
      expect.objectContaining({ tool: 'post_sms_2_send', reason: 'tool_denied', rule: 'policy.default', role: 'user', clientId: 'sms-user', isError: false }),
      expect.objectContaining({ tool: 'post_sms_3_messages', reason: 'argument_rule', role: 'user' }),
    ]);
    await waitFor(() => tappedTool(gw, 'post_sms_2_send') === 1, { message: 'the shadow-denied call to reach the child' });
  });
});

describe('hot reload', () => {
  it('applies a new policy to an open session and keeps the last good one after a bad edit', async () => {
    const v1 = seedPolicy();
    v1.version = 'allow-send';
    v1.roles.user.tools.allow = [...ALLOWED_FOR_USER, 'post_sms_2_send'];
    const { policyFile, clientsFile } = setup(v1);
    const gw = await start({ policyFile, clientsFile, policyPollMs: 50 });
    const user = await open(gw, 'sse', USER_TOKEN);

    const send = () => user.callTool({ name: 'post_sms_2_send', arguments: { to: TO, body: 'hi' } });
    expect(textOf(await send())).toBe(`post_sms_2_send ${JSON.stringify({ to: TO, body: 'hi' })}`);

    const v2 = seedPolicy();
    v2.version = 'deny-send';
    replaceFile(policyFile, JSON.stringify(v2, null, 2));
    const denied = await waitFor(
      async () => {
        try {
          await send();
          return undefined;
        } catch (error) {
          if (error instanceof McpError) return error;
          throw error;
        }
      },
      { timeoutMs: 10_000, message: 'post_sms_2_send to be denied after the reload' },
    );
    expectPolicyDenied(denied, { reason: 'tool_denied', name: 'post_sms_2_send' });
    expect(gw.gateway.policy?.current.version).toBe('deny-send');
    expect(gw.logs.some((l) => l.includes('"policy reloaded"'))).toBe(true);

    const rejectedReloads = () => gw.logs.filter((l) => l.includes('policy reload rejected')).length;
    expect(rejectedReloads()).toBe(0);
    replaceFile(policyFile, '{ "name": "broken", this is not JSON');
    await waitFor(() => rejectedReloads() === 1, { message: "'policy reload rejected' in the log" });
    expect(gw.gateway.policy?.current.version).toBe('deny-send');
    expectPolicyDenied(await rejection(send()), { reason: 'tool_denied', name: 'post_sms_2_send' });
    expect(textOf(await user.callTool({ name: 'post_sms_1_preview', arguments: { body: 'still allowed' } }))).toBe(
      `post_sms_1_preview ${JSON.stringify({ body: 'still allowed' })}`,
    );
    // A schema-invalid (but parseable) edit is rejected the same way.
    replaceFile(policyFile, JSON.stringify({ name: 'bad-keys', tools: { allow: ['*'] }, surprise: true }));
    await waitFor(() => rejectedReloads() === 2, { message: 'a second rejected reload' });
    expect(gw.logs.filter((l) => l.includes('policy reload rejected')).at(-1)).toContain('surprise');
    expect(gw.gateway.policy?.current.version).toBe('deny-send');
    expectPolicyDenied(await rejection(send()), { reason: 'tool_denied' });
  });
});

describe('/status', () => {
  it('shows the policy and the allowed/denied counts of the last tools/list per role', async () => {
    const { policyFile, clientsFile } = setup();
    const gw = await start({ policyFile, clientsFile });
    const status = async () => {
      const res = await fetch(`${gw.base}/status`, { headers: gw.adminHeaders() });
      expect(res.status).toBe(200);
      return (await res.json()) as Json;
    };

    const first = await status();
    const { roles, ...policy } = first.policy as { roles: string[] };
    expect(policy).toEqual({ name: 'sms-seed', version: '1', mode: 'enforce' });
    expect([...roles].sort()).toEqual(['admin', 'user']);
    expect(first.commands[SMS].toolsLastListed).toEqual({});

    const user = await open(gw, 'mcp', USER_TOKEN);
    await user.listTools();
    expect((await status()).commands[SMS].toolsLastListed).toEqual({
      user: { allowed: 2, denied: 6, at: expect.any(String) },
    });

    const admin = await open(gw, 'sse', ADMIN_TOKEN);
    await admin.listTools();
    expect((await status()).commands[SMS].toolsLastListed).toEqual({
      user: { allowed: 2, denied: 6, at: expect.any(String) },
      admin: { allowed: 8, denied: 0, at: expect.any(String) },
    });
  });
});

describe.each(KINDS)('tool rate limit over %s', (kind) => {
  it('the third call in the window is rate_limited with retryAfterMs; the session stays usable', async () => {
    const policy = seedPolicy();
    policy.roles.user.rateLimits.post_sms_1_preview = { calls: 2, perSeconds: 60 };
    const { policyFile, clientsFile } = setup(policy);
    const gw = await start({ policyFile, clientsFile });
    const user = await open(gw, kind, USER_TOKEN);
    const preview = () => user.callTool({ name: 'post_sms_1_preview', arguments: { to: TO, body: 'hello' } });

    expect((await preview()).isError).toBeFalsy();
    expect((await preview()).isError).toBeFalsy();
    const limited = await rejection(preview());
    expect(limited.code).toBe(ERROR_TABLE.rate_limited.rpc);
    expect(limited.data).toMatchObject({
      code: 'rate_limited',
      reason: 'rate_limited',
      name: 'post_sms_1_preview',
      rule: 'roles.user.rateLimits "post_sms_1_preview"',
    });
    const retryAfterMs = (limited.data as { retryAfterMs: number }).retryAfterMs;
    expect(retryAfterMs).toBeGreaterThan(0);
    expect(retryAfterMs).toBeLessThanOrEqual(60_000);

    const other = await user.callTool({ name: 'post_sms_3_messages', arguments: { to: TO, body: 'hello' } });
    expect(textOf(other)).toBe(`post_sms_3_messages ${JSON.stringify({ to: TO, body: 'hello' })}`);
    await waitFor(() => tappedTool(gw, 'post_sms_3_messages') === 1, { message: 'the child to log post_sms_3_messages' });
    expect(tappedTool(gw, 'post_sms_1_preview')).toBe(2); // the refused call never reached the child
    expect(gw.gateway.sessions.size).toBe(1);
  });
});

// ---------------------------------------------------------------------------------------
// Resource URIs and everything a child sends, against test/fixtures/leaky-server.mjs
// ---------------------------------------------------------------------------------------

const LEAKY = 'leaky';
/** The fake secrets leaky-server.mjs sends (assembled as it does). */
const LEAKY_SECRETS = [['AKIA', 'IOSFODNN7EXAMPLE'].join(''), ['ghp', 'FAKEfakeTOKENtoken0123456789abcdefAB'].join('_')];

function expectNoLeak(value: unknown): void {
  const wire = JSON.stringify(value) ?? '';
  for (const secret of LEAKY_SECRETS) expect(wire).not.toContain(secret);
}

/** URIs the leaky child read, from its stderr tap, in order. */
function tappedReads(gw: TestGateway): string[] {
  const out: string[] = [];
  for (const raw of gw.logs) {
    const entry = JSON.parse(raw) as { message?: string; line?: string };
    if (entry.message !== 'child stderr' || typeof entry.line !== 'string') continue;
    const at = entry.line.indexOf('tap resources/read ');
    if (at !== -1) out.push(JSON.parse(entry.line.slice(at + 'tap resources/read '.length)) as string);
  }
  return out;
}

async function startLeaky(policy: Json): Promise<{ gw: TestGateway; user: Client }> {
  const { policyFile, clientsFile } = setup(policy);
  const gw = await start({ policyFile, clientsFile }, { [LEAKY]: fixtureEntry('leaky-server.mjs') });
  return { gw, user: await open(gw, 'mcp', USER_TOKEN, LEAKY) };
}

describe('resource URI spellings through the gateway', () => {
  it('spellings that resolve outside the allowed directory get policy_denied and never reach the child', async () => {
    const { gw, user } = await startLeaky({
      name: 'uris',
      default: 'deny',
      resources: { allow: ['file:///srv/docs/*'], deny: ['file:///etc/*'] },
    });
    const refused: [string, Json][] = [
      ['file:////etc/passwd', { reason: 'resource_denied', rule: 'policy.resources.deny "file:///etc/*"' }],
      ['file:///srv/docs/x/..//..//etc/passwd', { reason: 'resource_denied', rule: 'policy.default' }],
      ['file:///proc/self/root/etc/passwd', { reason: 'resource_denied', rule: 'uri.alias' }],
      ['file:///srv/docs/..%2F..%2Fetc/passwd', { reason: 'malformed_request', rule: 'uri' }],
    ];
    for (const [uri, data] of refused) {
      expectPolicyDenied(await rejection(user.readResource({ uri })), { ...data, uri });
    }
    // The list shows what a read would allow.
    const listed = await user.listResources();
    expect(listed.resources.map((r) => r.uri)).toEqual(['file:///srv/docs/readme.txt']);
    expectNoLeak(listed);

    const ok = await user.readResource({ uri: 'file:////srv//docs/./readme.txt' });
    expect(ok.contents[0]).toMatchObject({ text: 'contents of file:////srv//docs/./readme.txt' });
    // Requests are read in order: once the allowed read is tapped, the refused ones would be too.
    await waitFor(() => tappedReads(gw).length > 0, { message: 'the child to log the allowed read' });
    expect(tappedReads(gw)).toEqual(['file:////srv//docs/./readme.txt']);
  });
});

describe('redaction of responses and tasks through the gateway', () => {
  it('errors, lists, prompts, completions and task results reach the client redacted; foreign tasks are refused', async () => {
    const { user } = await startLeaky({ name: 'leaky', default: 'allow' });
    expectNoLeak(user.getInstructions());

    const tools = await user.listTools();
    expect(tools.tools.map((t) => t.name)).toEqual(['leak_error', 'report', 'chatty', 'ask']);
    expectNoLeak(tools);

    const error = await rejection(user.callTool({ name: 'leak_error', arguments: {} }));
    expect(error.message).toContain('upstream rejected key [REDACTED:aws-access-key-id]');
    expect(error.data).toEqual({ token: '[REDACTED:github-token]', attempts: ['[REDACTED:aws-access-key-id]'] });

    expectNoLeak(await user.getPrompt({ name: 'rotate' }));
    expectNoLeak(await user.complete({ ref: { type: 'ref/prompt', name: 'rotate' }, argument: { name: 'env', value: '' } }));
    expectNoLeak(await user.request({ method: 'resources/templates/list' }, ListResourceTemplatesResultSchema));

    const created = await user.request({ method: 'tools/call', params: { name: 'report', arguments: {}, task: { ttl: 60_000 } } }, CreateTaskResultSchema);
    expectNoLeak(created);
    const taskId = created.task.taskId;
    const result = await user.request({ method: 'tasks/result', params: { taskId } }, CallToolResultSchema);
    expect(textOf(result)).toBe('report: aws_access_key_id=[REDACTED:aws-access-key-id]\ngithub_token=[REDACTED:github-token]');
    const listed = await user.request({ method: 'tasks/list' }, ListTasksResultSchema);
    expect(listed.tasks.map((t) => t.taskId)).toEqual([taskId]);
    expectNoLeak(listed);

    for (const method of ['tasks/get', 'tasks/result'] as const) {
      const refused = await rejection(user.request({ method, params: { taskId: 'task-foreign' } }, CallToolResultSchema));
      expectPolicyDenied(refused, { reason: 'unknown_task' });
      expectNoLeak(refused);
    }
  });
});

describe('redaction of notifications and server requests through the gateway', () => {
  it('progress, log messages and elicitation requests reach the client redacted', async () => {
    const { policyFile, clientsFile } = setup({ name: 'leaky', default: 'allow' });
    const gw = await start({ policyFile, clientsFile }, { [LEAKY]: fixtureEntry('leaky-server.mjs') });
    const client = new Client({ name: 'notified', version: '1' }, { capabilities: { elicitation: {} } });
    const seen: unknown[] = [];
    client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => void seen.push(n));
    client.setRequestHandler(ElicitRequestSchema, (request) => {
      seen.push(request);
      return { action: 'decline' };
    });
    const transport = new StreamableHTTPClientTransport(gw.url(LEAKY, 'mcp'), { requestInit: { headers: { Authorization: `Bearer ${USER_TOKEN}` } } });
    await client.connect(transport);
    opened.push(async () => {
      await transport.terminateSession().catch(() => undefined);
      await client.close();
    });
    const progress: unknown[] = [];
    await client.callTool({ name: 'chatty', arguments: {} }, undefined, { onprogress: (p) => void progress.push(p) });
    await client.callTool({ name: 'ask', arguments: {} });
    await waitFor(() => seen.length >= 2, { message: 'the log message and the elicitation request' });
    expect(progress).toEqual([expect.objectContaining({ progress: 1, message: 'using [REDACTED:aws-access-key-id]' })]);
    expect(seen).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ method: 'notifications/message', params: expect.objectContaining({ data: { token: '[REDACTED:github-token]' } }) }),
        expect.objectContaining({ method: 'elicitation/create', params: expect.objectContaining({ message: 'Confirm [REDACTED:aws-access-key-id]?' }) }),
      ]),
    );
    expectNoLeak(seen);
  });
});
