/**
 * Without Chromium the browser tests are skipped with one line saying so, and under CI=true
 * they fail instead, so CI always runs them. Runs jest on the browser test file with
 * WARDEN_TEST_CHROMIUM pointing at a binary that does not exist (no browser is started).
 */
import { describe, expect, it } from '@jest/globals';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';

const JEST = join(process.cwd(), 'node_modules/jest/bin/jest.js');
const BROWSER_TEST = 'test/integration/oauthBrowser.test.ts';
const CHROMIUM_MISSING_LINE = 'skipped: chromium not installed; `.ci/run` installs it';

async function jestWithoutChromium(ci: boolean): Promise<{ code: number | null; output: string }> {
  const env: NodeJS.ProcessEnv = { ...process.env, WARDEN_TEST_CHROMIUM: '/nonexistent/chromium' };
  delete env.CI;
  delete env.JEST_WORKER_ID;
  if (ci) env.CI = 'true';
  const child = spawn(process.execPath, ['--experimental-vm-modules', JEST, '--runTestsByPath', BROWSER_TEST], {
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

describe('browser tests where Chromium is missing', () => {
  it('are skipped with one line naming .ci/run, and the run passes', async () => {
    const { code, output } = await jestWithoutChromium(false);
    expect(count(output, CHROMIUM_MISSING_LINE)).toBe(1);
    expect(output).toMatch(/tests: 0 passed, 0 failed, [1-9]\d* skipped/);
    expect(code).toBe(0);
  }, 60_000);

  it('fail the run under CI=true, naming the missing binary', async () => {
    const { code, output } = await jestWithoutChromium(true);
    expect(output).toContain('/nonexistent/chromium not found, and CI=true');
    expect(output).not.toContain(CHROMIUM_MISSING_LINE);
    expect(code).not.toBe(0);
  }, 60_000);
});
