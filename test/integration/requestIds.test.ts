/**
 * Request ids on one session: an id already in flight is refused before it reaches the
 * child, and a reply the gateway cannot attribute to a request in flight (a repeated id,
 * a late reply after a cancel) is dropped, never forwarded unchecked. Otherwise a second
 * request with the same id would take over the first one's reply: an unredacted tool
 * result or an unfiltered tool list delivered as the answer to a `ping`, or an audit
 * record credited to the wrong tool.
 *
 * The held-server fixture keeps tools/list and tools/call replies until the tool
 * `release` is called, so a request is reliably in flight while the next one arrives.
 * Both transports, isolated and shared children.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ERROR_TABLE } from '../../src/errors.js';
import { fixtureEntry, startGateway, type Kind, type TestGateway } from '../helpers/gateway.js';
import { waitFor, waitForNoDescendants } from '../helpers/procs.js';
import { openRawSession, type Json, type RawSession } from '../helpers/rawSession.js';

const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const GITHUB_TOKEN = ['ghp', 'FAKEfakeTOKENtoken0123456789abcdefAB'].join('_');
const VISIBLE = ['account', 'echo', 'release'];

const call = (id: string | number, name: string) => ({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } });
const ping = (id: string | number) => ({ jsonrpc: '2.0', id, method: 'ping' });
let releases = 0;
const release = () => call(`release-${(releases += 1)}`, 'release');

const dir = mkdtempSync(join(tmpdir(), 'warden-ids-'));
const policyFile = join(dir, 'policy.json');
writeFileSync(policyFile, JSON.stringify({ name: 'ids', default: 'deny', roles: { user: { tools: { allow: VISIBLE } } } }));

const MODES = ['isolated', 'shared'] as const;
const gateways = new Map<(typeof MODES)[number], TestGateway>();
const auditFiles = new Map<(typeof MODES)[number], string>();
const sessions: RawSession[] = [];

beforeAll(async () => {
  for (const mode of MODES) {
    const auditFile = join(dir, `audit-${mode}.jsonl`);
    auditFiles.set(mode, auditFile);
    gateways.set(
      mode,
      await startGateway(
        { held: fixtureEntry('held-server.mjs', mode === 'shared' ? { mode: 'shared' } : {}) },
        { policyFile, defaultRole: 'user', auditFile },
      ),
    );
  }
});

afterEach(async () => {
  await Promise.allSettled(sessions.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await Promise.allSettled([...gateways.values()].map((gw) => gw.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

async function open(mode: (typeof MODES)[number], kind: Kind): Promise<RawSession> {
  const session = await openRawSession(gateways.get(mode)!, 'held', kind);
  sessions.push(session);
  return session;
}

/** Child stderr lines of the held server that saw `method` (and `name`) arrive. */
function childReads(gw: TestGateway, what: string): number {
  return gw.logs.filter((raw) => {
    const entry = JSON.parse(raw) as { message?: string; line?: string };
    return entry.message === 'child stderr' && typeof entry.line === 'string' && entry.line.includes(`held-server read ${what}`);
  }).length;
}

/** The refusal of a repeated id: HTTP 400 with a JSON-RPC -32600 error naming the reason. */
async function expectRefused(session: RawSession, message: Json): Promise<void> {
  const post = await session.post(message);
  await post.ended;
  expect(post.status).toBe(400);
  const body = JSON.parse(post.body()) as Json;
  expect(body.error.code).toBe(-32600);
  expect(body.error.code).toBe(ERROR_TABLE.bad_request.rpc);
  expect(body.error.message).toMatch(/already in flight/);
  expect(body.error.data.code).toBe('duplicate_request_id');
}

async function auditRecords(mode: (typeof MODES)[number]): Promise<Json[]> {
  return readFileSync(auditFiles.get(mode)!, 'utf8')
    .split('\n')
    .filter((line) => line.length > 0)
    .map((line) => JSON.parse(line) as Json);
}

describe.each(MODES)('%s children', (mode) => {
  describe.each<Kind>(['sse', 'mcp'])('over %s', (kind) => {
    it('refuses a ping that reuses the id of a tool call in flight; the call is still redacted', async () => {
      const gw = gateways.get(mode)!;
      const pingsBefore = childReads(gw, 'ping');
      const session = await open(mode, kind);
      await session.post(call(7, 'account'));
      await waitFor(() => childReads(gw, 'tools/call account') > 0, { message: 'the call reached the child' });
      await expectRefused(session, ping(7));
      await session.post(release());
      const reply = await session.reply(7);
      const text = JSON.stringify(reply);
      expect(text).not.toContain(AWS_KEY_ID);
      expect(text).not.toContain(GITHUB_TOKEN);
      expect(reply.result.content[0].text).toContain('[REDACTED');
      expect(childReads(gw, 'ping')).toBe(pingsBefore);
    });

    it('refuses a ping that reuses the id of a tools/list in flight; the list is still filtered', async () => {
      const session = await open(mode, kind);
      await session.post({ jsonrpc: '2.0', id: 5, method: 'tools/list' });
      await expectRefused(session, ping(5));
      await session.post(release());
      const reply = await session.reply(5);
      expect((reply.result.tools as Json[]).map((t) => t.name).sort()).toEqual(VISIBLE);
      expect(session.received().filter((m) => m.id === 5)).toHaveLength(1);
    });

    it('refuses a second tool call with the id in flight: one audit record, for the right tool', async () => {
      const session = await open(mode, kind);
      const id = `dup-${mode}-${kind}`;
      await session.post(call(id, 'account'));
      await expectRefused(session, call(id, 'echo'));
      await session.post(release());
      await session.reply(id);
      const idHash = gw(mode)
        .gateway.sessions.all()
        .find((s) => s.id === session.id)!.idHash;
      const mine = await waitFor(
        async () => {
          const found = (await auditRecords(mode)).filter((r) => r.event === 'tool_call' && r.session === idHash && r.tool !== 'release');
          return found.length > 0 && found;
        },
        { message: 'the audit record of the call' },
      );
      expect(mine.map((r) => r.tool)).toEqual(['account']);
      expect(mine[0]!.redactions).toBeGreaterThan(0);
    });

    it('keeps 1 and "1" apart: both are in flight at once and each gets its own reply', async () => {
      const session = await open(mode, kind);
      await session.post(call(1, 'account'));
      const post = await session.post(ping('1'));
      expect([200, 202]).toContain(post.status);
      expect(await session.reply('1')).toEqual({ jsonrpc: '2.0', id: '1', result: {} });
      await session.post(release());
      const reply = await session.reply(1);
      expect(JSON.stringify(reply)).not.toContain(AWS_KEY_ID);
      expect(reply.result.content[0].text).toContain('[REDACTED');
    });

    it('drops a reply the server sends after the client cancelled the request', async () => {
      const gw = gateways.get(mode)!;
      const session = await open(mode, kind);
      const id = `cancel-${mode}-${kind}`;
      const pending = await session.post(call(id, 'account'));
      const cancelled = await session.post({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: id, reason: 'test' } });
      expect(cancelled.status).toBe(202);
      if (kind === 'mcp') await pending.ended; // the cancelled request's response ends
      const released = release();
      await session.post(released);
      await session.reply(released.id);
      // The child wrote the late reply before the release reply; nothing of it arrived.
      expect(session.received().filter((m) => m.id === id)).toEqual([]);
      if (kind === 'mcp') expect(pending.body()).not.toContain(AWS_KEY_ID);
      // Isolated children forward the late reply to the bridge, which drops it (and says so);
      // a shared child drops it itself when the cancel is rewritten.
      if (mode === 'isolated')
        await waitFor(() => gw.logs.some((l) => l.includes('dropped a late reply to a cancelled request')), { message: 'the drop log line' });
    });
  });
});

function gw(mode: (typeof MODES)[number]): TestGateway {
  return gateways.get(mode)!;
}
