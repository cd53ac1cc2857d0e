/**
 * A running gateway follows its whitelist file: an entry added on disk serves at once (with
 * its warm spare), a changed entry serves new sessions with its new spec while a live one
 * keeps its child, a removed entry refuses new sessions with 404 while live ones finish (or
 * are ended, with --on-remove end), and a bad edit keeps the last good table with an error
 * log naming the entry and the problem. A policy may name a key added after the start.
 *
 * Waits on the whitelist's change events and on log lines; never sleeps.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  connectClient,
  exitHandled,
  fixtureEntry,
  initializeBody,
  MCP_ACCEPT,
  sseConnectOnce,
  startGateway,
  type Kind,
  type TestGateway,
} from '../helpers/gateway.js';
import { isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';
import type { WhitelistChange } from '../../src/whitelist/live.js';
import { Client as SdkClient } from '@modelcontextprotocol/sdk/client/index.js';
import { SseError } from '@modelcontextprotocol/sdk/client/sse.js';
import type { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const gateways: TestGateway[] = [];
const clients: Client[] = [];

async function start(commands: Record<string, unknown>, settings: Parameters<typeof startGateway>[1] = {}): Promise<TestGateway> {
  const gw = await startGateway(commands, { commandsPollMs: 20, ...settings });
  gateways.push(gw);
  return gw;
}

afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await Promise.allSettled(gateways.splice(0).map((gw) => gw.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

function fileOf(gw: TestGateway): string {
  return gw.gateway.whitelist!.source.file;
}

/** The next change the gateway applies. */
function nextChange(gw: TestGateway): Promise<WhitelistChange> {
  const live = gw.gateway.whitelist!;
  return new Promise((resolve) => {
    live.onChange = (change) => {
      live.onChange = undefined;
      resolve(change);
    };
  });
}

/** Writes the whitelist as an admin's editor would: in place. */
function edit(gw: TestGateway, commands: Record<string, unknown>): void {
  writeFileSync(fileOf(gw), JSON.stringify(commands, null, 2));
}

async function connect(gw: TestGateway, key: string, kind: Kind = 'mcp'): Promise<Client> {
  return (await connectWith(gw, key, kind)).client;
}

async function connectWith(gw: TestGateway, key: string, kind: Kind): Promise<Awaited<ReturnType<typeof connectClient>>> {
  const connection = await connectClient(gw, key, kind);
  clients.push(connection.client);
  return connection;
}

async function envOf(client: Client): Promise<Record<string, string>> {
  const result = (await client.callTool({ name: 'env', arguments: {} })) as { content: Array<{ text: string }> };
  return JSON.parse(result.content[0]!.text) as Record<string, string>;
}

/** A raw initialize POST: the status and the error code a new session gets. */
async function initialize(gw: TestGateway, key: string): Promise<{ status: number; code: unknown }> {
  const res = await fetch(gw.url(key, 'mcp'), { method: 'POST', headers: gw.headers(MCP_ACCEPT), body: JSON.stringify(initializeBody()) });
  const body = (await res.json()) as { error?: { data?: { code?: unknown } } };
  return { status: res.status, code: body.error?.data?.code };
}

describe('whitelist reload from the file', () => {
  it('serves an entry added on disk at once, with its warm spare', async () => {
    const gw = await start({ first: fixtureEntry('env-server.mjs') });
    expect(await initialize(gw, 'added')).toEqual({ status: 404, code: 'unknown_command' });
    const changed = nextChange(gw);
    edit(gw, { first: fixtureEntry('env-server.mjs'), added: fixtureEntry('env-server.mjs', { pool: { min: 1 }, env: { MARK: 'added' } }) });
    expect(await changed).toEqual({ added: ['added'], changed: [], removed: [], sessionsOfRemoved: 0 });
    const spec = gw.gateway.registry.get('added')!;
    await waitFor(() => gw.gateway.processes.status(spec).warm === 1, { message: 'the new entry to get its warm spare' });
    const client = await connect(gw, 'added');
    expect((await envOf(client)).MARK).toBe('added');
    expect(gw.logs.some((l) => l.includes('"message":"whitelist reloaded"') && l.includes('"added":["added"]'))).toBe(true);
  });

  it('a changed entry: new sessions get the new spec (and new spares), a live session keeps its child', async () => {
    const gw = await start({ x: fixtureEntry('env-server.mjs', { env: { MARK: 'one' }, pool: { min: 1 } }) });
    const old = await connect(gw, 'x');
    const changed = nextChange(gw);
    edit(gw, { x: fixtureEntry('env-server.mjs', { env: { MARK: 'two' }, pool: { min: 1 } }) });
    expect(await changed).toMatchObject({ added: [], changed: ['x'], removed: [] });
    await waitFor(() => gw.gateway.processes.status(gw.gateway.registry.get('x')!).warm === 1, { message: 'a spare of the new spec' });
    const fresh = await connect(gw, 'x');
    expect((await envOf(fresh)).MARK).toBe('two');
    expect((await envOf(old)).MARK).toBe('one');
  });

  it.each<Kind>(['mcp', 'sse'])('a removed entry (%s): the live session keeps working, a new one gets 404 unknown_command', async (kind) => {
    const gw = await start({ stays: fixtureEntry('env-server.mjs'), gone: fixtureEntry('env-server.mjs', { env: { MARK: 'gone' } }) });
    const { client: live, transport } = await connectWith(gw, 'gone', kind);
    const changed = nextChange(gw);
    edit(gw, { stays: fixtureEntry('env-server.mjs') });
    expect(await changed).toEqual({ added: [], changed: [], removed: ['gone'], sessionsOfRemoved: 1 });
    expect((await envOf(live)).MARK).toBe('gone');
    expect(await initialize(gw, 'gone')).toEqual({ status: 404, code: 'unknown_command' });
    const sse = await fetch(gw.url('gone', 'sse'), { headers: gw.headers() });
    expect(sse.status).toBe(404);
    await expect(connect(gw, 'gone', kind)).rejects.toThrow();
    // The live session still ends normally (a DELETE for Streamable HTTP, the stream's end for SSE).
    expect((await envOf(live)).MARK).toBe('gone');
    if (kind === 'mcp') await (transport as StreamableHTTPClientTransport).terminateSession();
    await live.close();
    await waitFor(() => gw.gateway.sessions.size === 0, { message: 'the session to end' });
  });

  it('a removed shared entry: its shared child serves its live session, then stops once that session ended', async () => {
    const gw = await start({ stays: fixtureEntry('env-server.mjs'), shared: fixtureEntry('env-server.mjs', { mode: 'shared', env: { MARK: 'shared' } }) });
    const { client, transport } = await connectWith(gw, 'shared', 'mcp');
    const pid = gw.gateway.sessions.all()[0]!.bridge.child.pid;
    const changed = nextChange(gw);
    edit(gw, { stays: fixtureEntry('env-server.mjs') });
    await changed;
    expect((await envOf(client)).MARK).toBe('shared');
    expect(isAlive(pid)).toBe(true);
    await (transport as StreamableHTTPClientTransport).terminateSession();
    // The process may be gone a moment before the manager has handled its exit.
    await waitFor(() => !isAlive(pid) && gw.gateway.processes.total() === 0, { message: 'the retired shared child to stop, and no child counted' });
  });

  it('--on-remove end: the live sessions of a removed entry end, and their children stop', async () => {
    const gw = await start({ stays: fixtureEntry('env-server.mjs'), gone: fixtureEntry('env-server.mjs') }, { onRemove: 'end' });
    const transport = sseConnectOnce(gw.url('gone', 'sse'), { headers: gw.headers() });
    const client = new SdkClient({ name: 'warden-test', version: '1.0.0' });
    clients.push(client);
    await client.connect(transport);
    const session = gw.gateway.sessions.all().find((s) => s.commandKey === 'gone')!;
    const stopped = exitHandled(session.bridge.child);
    const closed = new Promise<void>((resolve) => {
      transport.onerror = (error) => {
        if (error instanceof SseError) resolve();
      };
    });
    const changed = nextChange(gw);
    edit(gw, { stays: fixtureEntry('env-server.mjs') });
    expect(await changed).toMatchObject({ removed: ['gone'], sessionsOfRemoved: 1 });
    await closed;
    await waitFor(stopped, { message: "the removed entry's child to stop" });
    expect(gw.gateway.sessions.size).toBe(0);
  });

  it('a bad edit keeps the last good whitelist and logs the entry and the problem', async () => {
    const gw = await start({ good: fixtureEntry('env-server.mjs') });
    // An in-place write may be seen half done (rejected too): wait for the line about the entry.
    const rejected = (text: string) => gw.logs.find((l) => l.includes('whitelist reload rejected; keeping the last good whitelist') && l.includes(text));
    edit(gw, { good: fixtureEntry('env-server.mjs'), broken: { command: 'node', argz: [] } });
    const line = await waitFor(() => rejected('broken'), { message: 'the rejected reload in the log' });
    const logged = JSON.parse(line) as { level: string; entry: string; error: string };
    expect(logged).toMatchObject({ level: 'error', entry: 'broken' });
    expect(logged.error).toContain('entry "broken": unknown field "argz"');
    expect(gw.gateway.registry.keys()).toEqual(['good']);

    writeFileSync(fileOf(gw), '{ "good": ');
    await waitFor(() => rejected('invalid JSON'), { message: 'a rejected reload of invalid JSON' });
    expect(gw.gateway.registry.keys()).toEqual(['good']);
    const client = await connect(gw, 'good');
    expect(await envOf(client)).toHaveProperty('PATH');

    const changed = nextChange(gw);
    edit(gw, { good: fixtureEntry('env-server.mjs'), fixed: fixtureEntry('env-server.mjs') });
    expect((await changed).added).toEqual(['fixed']);
  });

  it('a policy may name a key added while running', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'warden-reload-policy-'));
    const policyFile = join(dir, 'policy.json');
    writeFileSync(policyFile, JSON.stringify({ name: 'p1', default: 'allow' }));
    const gw = await start({ first: fixtureEntry('env-server.mjs') }, { policyFile, policyPollMs: 20 });
    const changed = nextChange(gw);
    edit(gw, { first: fixtureEntry('env-server.mjs'), late: fixtureEntry('env-server.mjs') });
    await changed;
    writeFileSync(policyFile, JSON.stringify({ name: 'p2', default: 'allow', commands: { late: { tools: { deny: ['env'] } } } }));
    await waitFor(() => gw.gateway.policy?.current.name === 'p2', { message: 'the policy naming the new key to load' });
    expect(gw.logs.some((l) => l.includes('policy reload rejected'))).toBe(false);
  });
});
