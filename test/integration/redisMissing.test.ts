/**
 * Without redis-server the Redis tests are skipped with one line saying so, and under
 * CI=true they fail instead, so CI always runs them. Runs jest on one Redis test file with
 * WARDEN_TEST_REDIS_SERVER pointing at a binary that does not exist.
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

const JEST = join(process.cwd(), 'node_modules/jest/bin/jest.js');
const REDIS_TEST = 'test/integration/redisLimits.test.ts';
const REDIS_MISSING_LINE = 'skipped: redis-server not installed; `.ci/run` installs it';

async function jestWithoutRedis(ci: boolean): Promise<{ code: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_TEST_REDIS_SERVER: '/nonexistent/redis-server' };
  delete env.CI;
  delete env.JEST_WORKER_ID;
  if (ci) env.CI = 'true';
  const child = spawn(process.execPath, ['--experimental-vm-modules', JEST, '--runTestsByPath', REDIS_TEST], {
    cwd: process.cwd(),
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, output };
}

const count = (text: string, part: string): number => text.split(part).length - 1;

describe('Redis tests where redis-server is missing', () => {
  it('are skipped with one line naming .ci/run, and the run passes', async () => {
    const { code, output } = await jestWithoutRedis(false);
    expect(count(output, REDIS_MISSING_LINE)).toBe(1);
    expect(output).toMatch(/tests: 1 passed, 0 failed, [1-9]\d* skipped/);
    expect(code).toBe(0);
  }, 60_000);

  it('fail the run under CI=true, naming the missing binary', async () => {
    const { code, output } = await jestWithoutRedis(true);
    expect(output).toContain('/nonexistent/redis-server not found, and CI=true');
    expect(output).not.toContain(REDIS_MISSING_LINE);
    expect(code).not.toBe(0);
  }, 60_000);
});
