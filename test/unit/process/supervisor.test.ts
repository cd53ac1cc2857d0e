/**
 * The supervisor with real fixture children: failed starts retried with doubling delays,
 * then the command's circuit opens and refuses at once; half-open allows one trial; other
 * commands are unaffected; a slow start is not a failure, an exit before any answer is;
 * a crash after answering is a crash; a spare that dies unused leaves the circuit alone.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import type { AuditRecorder } from '../../../src/audit/recorder.js';
import { UpstreamFailedError } from '../../../src/errors.js';
import type { ChildTransport } from '../../../src/process/childTransport.js';
import { Supervisor, type SupervisorOptions } from '../../../src/process/supervisor.js';
import { captureLogger, fixtureSpec, TEST_STOP, type LogEntry } from '../../helpers/children.js';
import { MessageLog, withId } from '../../helpers/fakeTransports.js';
import { waitFor, waitForNoDescendants } from '../../helpers/procs.js';

const RETRY_BASE_MS = 40;
const COOLDOWN_MS = 200;
/** Node's start-up on a loaded machine must fit in the window, or a crash at start would look like a good start. */
const WIDE_WINDOW = { startupWindowMs: 2_000 };

const started: ChildTransport[] = [];

afterEach(async () => {
  await Promise.all(started.splice(0).map((c) => c.close()));
  await waitForNoDescendants(process.pid, { timeoutMs: 5_000 });
});

class RecordingAudit implements AuditRecorder {
  readonly events: { event: string; at: number; fields: Record<string, unknown> }[] = [];
  record(event: string, fields: Record<string, unknown>): void {
    this.events.push({ event, at: performance.now(), fields });
  }
}

function supervisor(options: Partial<SupervisorOptions> = {}): { sup: Supervisor; audit: RecordingAudit; entries: LogEntry[] } {
  const { logger, entries } = captureLogger();
  const audit = new RecordingAudit();
  const sup = new Supervisor({
    logger,
    audit,
    startAttempts: 3,
    retryBaseMs: RETRY_BASE_MS,
    startupWindowMs: 150,
    circuit: { baseCooldownMs: COOLDOWN_MS, maxCooldownMs: 10 * COOLDOWN_MS },
    child: { stopTimeouts: TEST_STOP },
    ...options,
  });
  return { sup, audit, entries };
}

async function start(sup: Supervisor, spec = fixtureSpec('crash-server.mjs')): Promise<ChildTransport> {
  const child = await sup.start(spec, {});
  started.push(child);
  return child;
}

const CRASH_ON_START = fixtureSpec('crash-server.mjs', ['--crash-on-start']);

describe('Supervisor', () => {
  it('retries a failed start with doubling delays, then opens the circuit and refuses without spawning', async () => {
    const { sup, audit } = supervisor(WIDE_WINDOW);
    const failure = await sup.start(CRASH_ON_START, {}).catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(UpstreamFailedError);
    expect((failure as UpstreamFailedError).message).toBe('upstream failed to start: exited with code 1 during startup');
    expect((failure as UpstreamFailedError).retryAfter).toBeGreaterThanOrEqual(1);

    const at = (event: string) => audit.events.filter((e) => e.event === event).map((e) => e.at);
    const [spawns, exits] = [at('spawn'), at('exit')];
    expect([spawns.length, exits.length]).toEqual([3, 3]);
    // Each retry waits at least its delay (the base, then twice the base) after the previous attempt ended.
    expect(spawns[1]! - exits[0]!).toBeGreaterThanOrEqual(RETRY_BASE_MS - 1);
    expect(spawns[2]! - exits[1]!).toBeGreaterThanOrEqual(2 * RETRY_BASE_MS - 1);
    expect(sup.health(CRASH_ON_START.key)).toMatchObject({ spawns: 3, restarts: 2, failures: 3, crashes: 0, circuit: 'open', lastExits: [1, 1, 1] });

    const refused = await sup.start(CRASH_ON_START, {}).catch((e: unknown) => e);
    expect((refused as UpstreamFailedError).message).toBe(
      'upstream failed to start: the command is failing (last: exited with code 1 during startup); try again later',
    );
    expect(sup.retryAfterSeconds(CRASH_ON_START.key)).toBeGreaterThanOrEqual(1);
    expect(sup.health(CRASH_ON_START.key).spawns).toBe(3);

    // Another command is not affected.
    await start(sup);
    expect(sup.health(fixtureSpec('crash-server.mjs').key).circuit).toBe('closed');
  });

  it('half-open after the cooldown: one trial start; a failed trial opens it again, a good one closes it', async () => {
    const { sup } = supervisor(WIDE_WINDOW);
    await expect(sup.start(CRASH_ON_START, {})).rejects.toBeInstanceOf(UpstreamFailedError);
    await waitFor(() => sup.health(CRASH_ON_START.key).circuit === 'half-open', { message: 'the circuit half-open' });

    await expect(sup.start(CRASH_ON_START, {})).rejects.toBeInstanceOf(UpstreamFailedError);
    expect(sup.health(CRASH_ON_START.key)).toMatchObject({ spawns: 4, circuit: 'open' });

    // The same command key, now able to start (an admin fixed its entry).
    await waitFor(() => sup.health(CRASH_ON_START.key).circuit === 'half-open', { message: 'the circuit half-open again' });
    const child = await start(sup, fixtureSpec('crash-server.mjs', [], { key: CRASH_ON_START.key }));
    expect(child.closed).toBe(false);
    expect(sup.health(CRASH_ON_START.key)).toMatchObject({ spawns: 5, circuit: 'closed' });
  });

  it('a start slower than the startup window is fine; the child answers later', async () => {
    const { sup } = supervisor();
    const spec = fixtureSpec('slow-start-server.mjs', ['400']);
    const child = await start(sup, spec);
    expect(child.answered).toBe(false);
    const replies = new MessageLog<JSONRPCMessage>();
    child.onmessage = (m) => replies.push(m);
    await child.start();
    await child.send({ jsonrpc: '2.0', id: 1, method: 'ping' });
    await replies.next(withId(1), 'the late ping reply');
    expect(child.answered).toBe(true);
    await child.close();
    expect(sup.health(spec.key)).toMatchObject({ spawns: 1, failures: 0, crashes: 0, circuit: 'closed' });
  });

  it('a child that dies in use before it ever answered is a failed start: the circuit opens', async () => {
    const { sup, entries } = supervisor();
    const spec = fixtureSpec('slow-start-server.mjs', ['60000']);
    const child = await start(sup, spec);
    await child.start();
    process.kill(child.pid, 'SIGKILL');
    await waitFor(() => sup.health(spec.key).failures === 1, { message: 'the failure counted' });
    expect(sup.health(spec.key)).toMatchObject({ crashes: 0, circuit: 'open', lastExits: ['SIGKILL'] });
    expect(entries.some((e) => e.message === 'child exited before answering')).toBe(true);
    await expect(sup.start(spec, {})).rejects.toThrow('the command is failing (last: exited with SIGKILL before answering)');
  });

  it('a crash after the child answered is a crash, not a failure: the circuit stays closed', async () => {
    const { sup } = supervisor();
    const spec = fixtureSpec('crash-server.mjs');
    const child = await start(sup, spec);
    const replies = new MessageLog<JSONRPCMessage>();
    child.onmessage = (m) => replies.push(m);
    await child.start();
    await child.send({ jsonrpc: '2.0', id: 1, method: 'ping' });
    await replies.next(withId(1), 'ping reply');
    await child.send({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'crash', arguments: {} } });
    await waitFor(() => sup.health(spec.key).crashes === 1, { message: 'the crash counted' });
    expect(sup.health(spec.key)).toMatchObject({ failures: 0, circuit: 'closed', lastExits: [3] });
  });

  it('a spare that dies before any session used it leaves the counters and the circuit alone', async () => {
    const { sup, entries } = supervisor();
    const spec = fixtureSpec('crash-server.mjs');
    const child = await start(sup, spec);
    process.kill(child.pid, 'SIGKILL');
    await waitFor(() => entries.some((e) => e.message === 'warm spare exited'), { message: 'the spare exit logged' });
    expect(sup.health(spec.key)).toMatchObject({ spawns: 1, failures: 0, crashes: 0, circuit: 'closed' });
  });

  it('a command that cannot be spawned fails with the reason after its attempts, spawning nothing', async () => {
    const { sup } = supervisor();
    const spec = { ...fixtureSpec('missing'), key: 'missing', command: '/nonexistent/binary', args: [] };
    await expect(sup.start(spec, {})).rejects.toThrow('upstream failed to start: ENOENT');
    expect(sup.health('missing')).toMatchObject({ spawns: 0, failures: 3, restarts: 2, circuit: 'open' });
  });
});
