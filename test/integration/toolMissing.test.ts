/**
 * Without redis-server or Chromium, the tests that need it are skipped with one line saying
 * so, and under CI=true they fail instead, so CI always runs them. Each case runs jest on one
 * such test file with the binary's variable pointing at a file that does not exist (nothing
 * is started).
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

const JEST = join(process.cwd(), 'node_modules/jest/bin/jest.js');

const TOOLS = [
  {
    tool: 'redis-server',
    variable: 'WARDEN_TEST_REDIS_SERVER',
    testFile: 'test/integration/redisLimits.test.ts',
    missingLine: 'skipped: redis-server not installed; `.ci/run` installs it',
    // The file has one test that needs no Redis.
    tally: /tests: 1 passed, 0 failed, [1-9]\d* skipped/,
  },
  {
    tool: 'chromium',
    variable: 'WARDEN_TEST_CHROMIUM',
    testFile: 'test/integration/oauthBrowser.test.ts',
    missingLine: 'skipped: chromium not installed; `.ci/run` installs it',
    tally: /tests: 0 passed, 0 failed, [1-9]\d* skipped/,
  },
];

async function jestWithout(binary: string, variable: string, testFile: string, ci: boolean): Promise<{ code: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, [variable]: binary };
  delete env.CI;
  delete env.JEST_WORKER_ID;
  if (ci) env.CI = 'true';
  const child = spawn(process.execPath, ['--experimental-vm-modules', JEST, '--runTestsByPath', testFile], {
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

describe.each(TOOLS)('tests that need $tool, where it is missing', ({ tool, variable, testFile, missingLine, tally }) => {
  const binary = `/nonexistent/${tool}`;

  it('are skipped with one line naming .ci/run, and the run passes', async () => {
    const { code, output } = await jestWithout(binary, variable, testFile, false);
    expect(count(output, missingLine)).toBe(1);
    expect(output).toMatch(tally);
    expect(code).toBe(0);
  }, 60_000);

  it('fail the run under CI=true, naming the missing binary', async () => {
    const { code, output } = await jestWithout(binary, variable, testFile, true);
    expect(output).toContain(`${binary} not found, and CI=true`);
    expect(output).not.toContain(missingLine);
    expect(code).not.toBe(0);
  }, 60_000);
});
