/**
 * A throwaway redis-server for tests: loopback only, no persistence, a free port.
 * Readiness is its own "Ready to accept connections" log line, not a sleep.
 *
 * Test files that need one wrap their Redis tests in `describeWithRedis`. Where
 * redis-server is not installed those tests are skipped, with one line on stderr per test
 * file that imports this helper; under CI=true a missing redis-server fails the file
 * instead, so CI always runs them. WARDEN_TEST_REDIS_SERVER names another binary
 * (the test of this behaviour points it at a path that does not exist).
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { describe } from '@jest/globals';

export const REDIS_SERVER = process.env.WARDEN_TEST_REDIS_SERVER || 'redis-server';
export const REDIS_MISSING_LINE = 'skipped: redis-server not installed; `.ci/run` installs it';
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 5;

export interface TestRedis {
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** SIGTERM (SIGKILL after 5 s) and wait for the exit. Idempotent. */
  stop(): Promise<void>;
}

/** A port that was free a moment ago (bind to 0, read it, close). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}

/** Whether `REDIS_SERVER --version` runs (checked once, synchronously, at module load). */
export const redisInstalled: boolean = spawnSync(REDIS_SERVER, ['--version'], { stdio: 'ignore', timeout: 10_000 }).status === 0;

if (!redisInstalled) {
  if (process.env.CI === 'true' || process.env.CI === '1') {
    throw new Error(`${REDIS_SERVER} not found, and CI=true: CI must run the Redis tests (apt-get install redis-server, as .ci/run does)`);
  }
  process.stderr.write(`${REDIS_MISSING_LINE}\n`);
}

/** `describe` where redis-server is installed, `describe.skip` where it is not. */
export const describeWithRedis: typeof describe = redisInstalled ? describe : (describe.skip as typeof describe);

class PortInUse extends Error {}

/** Spawns redis-server on `port`; resolves once it accepts connections. */
function spawnOn(port: number): Promise<ChildProcess> {
  const child = spawn(REDIS_SERVER, ['--port', String(port), '--save', '', '--appendonly', 'no', '--bind', '127.0.0.1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let output = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      fail(new Error(`redis-server did not become ready within ${START_TIMEOUT_MS} ms:\n${output}`));
    }, START_TIMEOUT_MS);
    const done = (): void => {
      clearTimeout(timer);
      child.stdout?.off('data', onData);
      child.off('exit', onExit);
      child.off('error', onError);
    };
    const fail = (error: Error): void => {
      done();
      reject(error);
    };
    const onData = (chunk: Buffer): void => {
      output += chunk.toString('utf8');
      if (output.includes('Ready to accept connections')) {
        done();
        child.stdout?.resume(); // keep draining its log
        resolve(child);
      }
    };
    const onExit = (code: number | null, signal: NodeJS.Signals | null): void => {
      const why = `redis-server exited (${signal ?? code}) before it was ready:\n${output}`;
      fail(/Address already in use/i.test(output) ? new PortInUse(why) : new Error(why));
    };
    const onError = (error: Error): void => fail(error);
    child.stdout?.on('data', onData);
    child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
    child.once('exit', onExit);
    child.once('error', onError);
  });
}

/** Starts a redis-server on a free loopback port (another port if that one got taken). */
export async function startRedis(): Promise<TestRedis> {
  if (!redisInstalled) throw new Error(`${REDIS_SERVER} not found: install redis-server (apt-get install redis-server)`);
  for (let attempt = 1; ; attempt++) {
    const port = await freePort();
    let child: ChildProcess;
    try {
      child = await spawnOn(port);
    } catch (error) {
      if (error instanceof PortInUse && attempt < PORT_ATTEMPTS) continue;
      throw error;
    }
    const pid = child.pid;
    if (pid === undefined) throw new Error('redis-server has no pid');
    let stopping: Promise<void> | undefined;
    return {
      url: `redis://127.0.0.1:${port}`,
      port,
      pid,
      stop: () =>
        (stopping ??= (async () => {
          const gone = exited(child);
          child.kill('SIGTERM');
          const killer = setTimeout(() => child.kill('SIGKILL'), STOP_TIMEOUT_MS);
          await gone;
          clearTimeout(killer);
        })()),
    };
  }
}
