/**
 * Tasks (2025-11-25, experimental) through a shared child: the child's task store is one
 * for every session, so one session could list, read or fetch the results of another's
 * tasks. Through a shared child the gateway offers no tasks: the capability is not
 * advertised, task-augmented calls and tasks/* requests are refused, and task status
 * notifications are not broadcast.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { EVERYTHING, EVERYTHING_ENTRY, startGateway, type Kind, type TestGateway } from '../helpers/gateway.js';
import { waitForNoDescendants } from '../helpers/procs.js';
import { openRawSession, type Json, type RawSession } from '../helpers/rawSession.js';

let gw: TestGateway;
const sessions: RawSession[] = [];

beforeAll(async () => {
  gw = await startGateway({ [EVERYTHING]: { ...EVERYTHING_ENTRY, mode: 'shared' } });
});

afterEach(async () => {
  await Promise.allSettled(sessions.splice(0).map((s) => s.close()));
});

afterAll(async () => {
  await gw.close();
  await waitForNoDescendants(process.pid);
});

async function open(kind: Kind): Promise<RawSession> {
  const session = await openRawSession(gw, EVERYTHING, kind);
  sessions.push(session);
  return session;
}

describe.each<Kind>(['sse', 'mcp'])('over %s', (kind) => {
  it('does not advertise tasks in the shared initialize result', async () => {
    const session = await open(kind);
    const init = session.received().find((m) => m.id === 'init') as Json;
    expect(init.result.capabilities.tools).toBeDefined();
    expect(init.result.capabilities.tasks).toBeUndefined();
  });

  it('refuses a task-augmented tool call and every tasks/* request', async () => {
    const a = await open(kind);
    const b = await open(kind);
    await a.post({
      jsonrpc: '2.0',
      id: 't1',
      method: 'tools/call',
      params: { name: 'simulate-research-query', arguments: { topic: 'x' }, task: { ttl: 60_000 } },
    });
    const created = await a.reply('t1');
    expect(created.error).toMatchObject({ code: -32602, message: expect.stringContaining('not available through a shared server') });
    await b.post({ jsonrpc: '2.0', id: 'list', method: 'tasks/list', params: {} });
    expect((await b.reply('list')).error).toMatchObject({ code: -32601, message: expect.stringContaining('not available through a shared server') });
    // A task id the session never created is refused before anything else looks at it.
    for (const [i, method] of ['tasks/get', 'tasks/result', 'tasks/cancel'].entries()) {
      await b.post({ jsonrpc: '2.0', id: i, method, params: { taskId: 'anything' } });
      expect((await b.reply(i)).error).toMatchObject({ data: { code: 'policy_denied', reason: 'unknown_task' } });
    }
  });
});
