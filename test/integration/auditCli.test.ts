/**
 * The built `mcp-warden audit verify` as a separate process: exit codes, what goes to
 * stdout and stderr, and the HMAC key taken from the environment only.
 * Needs `npm run build` (npm test does).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, type AuditLogOptions } from '../../src/audit/auditLog.js';
import { formatHead, headPath } from '../../src/audit/head.js';
import { runCli as run, type CliRun } from '../helpers/cli.js';

/** `mcp-warden <args>` with `env` added to PATH and HOME. */
const runCli = (args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> => run(args, { env });

let dir: string;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-audit-cli-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function writeLog(count: number, options: Omit<AuditLogOptions, 'file'> = {}): Promise<string> {
  counter += 1;
  const file = join(dir, `audit-${counter}.jsonl`);
  const log = await AuditLog.open({ ...options, file });
  for (let i = 1; i <= count; i += 1) log.record('tool.call', { tool: `t${i}` });
  await log.close();
  return file;
}

describe('mcp-warden audit verify (built CLI)', () => {
  it('verifies an intact file: exit 0, "ok: N lines verified" on stdout', async () => {
    const file = await writeLog(4);
    const run = await runCli(['audit', 'verify', file]);
    expect(run).toEqual({ code: 0, stdout: 'ok: 4 lines verified; the head file matches\n', stderr: '' });
  });

  it('names the first broken line of a tampered file: exit 1', async () => {
    const file = await writeLog(4);
    const text = await readFile(file, 'utf8');
    await writeFile(file, text.replace('"tool":"t2"', '"tool":"tX"'));
    const run = await runCli(['audit', 'verify', file]);
    expect(run).toEqual({ code: 1, stdout: 'broken at line 3: chain broken (prev does not match line 2)\n', stderr: '' });
  });

  it('reads the HMAC key from WARDEN_AUDIT_HMAC_KEY by default', async () => {
    const file = await writeLog(3, { hmacKey: 'cli-key' });
    expect(await runCli(['audit', 'verify', file], { WARDEN_AUDIT_HMAC_KEY: 'cli-key' })).toMatchObject({
      code: 0,
      stdout: 'ok: 3 lines verified; the head file matches\n',
    });
    expect(await runCli(['audit', 'verify', file], { WARDEN_AUDIT_HMAC_KEY: 'wrong' })).toMatchObject({
      code: 1,
      stdout: 'broken at line 2: chain broken (prev does not match line 1)\n',
    });
    expect(await runCli(['audit', 'verify', file])).toMatchObject({ code: 1, stdout: expect.stringMatching(/^broken at line 2:/) });
  });

  it('reads the HMAC key from the variable named by --hmac-key-env', async () => {
    const file = await writeLog(3, { hmacKey: 'other-key' });
    const env = { MY_AUDIT_KEY: 'other-key', WARDEN_AUDIT_HMAC_KEY: 'ignored' };
    expect(await runCli(['audit', 'verify', file, '--hmac-key-env', 'MY_AUDIT_KEY'], env)).toEqual({
      code: 0,
      stdout: 'ok: 3 lines verified; the head file matches\n',
      stderr: '',
    });
    expect(await runCli(['audit', 'verify', `--hmac-key-env=MY_AUDIT_KEY`, file], env)).toMatchObject({ code: 0 });
  });

  it('fails when the newest records were removed with the log closed, and after the log reopened', async () => {
    const file = await writeLog(5);
    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    await writeFile(
      file,
      lines
        .slice(0, 3)
        .map((line) => `${line}\n`)
        .join(''),
    );
    expect(await runCli(['audit', 'verify', file])).toEqual({
      code: 1,
      stdout: 'broken: 2 record(s) missing at the end: the head file says the trail ends at seq 5; the file ends at seq 3\n',
      stderr: '',
    });
    // The gateway's log reopens the trail: it records the gap and continues.
    const log = await AuditLog.open({ file, onGap: () => undefined });
    log.record('tool.call', { tool: 'after' });
    await log.close();
    expect(await runCli(['audit', 'verify', file])).toEqual({
      code: 1,
      stdout: 'broken at line 4: the gateway recorded a gap in the trail here (records missing at the end)\n',
      stderr: '',
    });
  });

  it('with a key, fails on a head file forged to match a truncated trail', async () => {
    const key = 'cli-head-key-0123456789';
    const file = await writeLog(5, { hmacKey: key });
    const lines = (await readFile(file, 'utf8')).split('\n').filter(Boolean);
    const kept = lines
      .slice(0, 3)
      .map((line) => `${line}\n`)
      .join('');
    await writeFile(file, kept);
    const hash = createHash('sha256').update(lines[2]!).digest('hex');
    await writeFile(headPath(file), formatHead({ seq: 3, hash, bytes: Buffer.byteLength(kept) }, 'guessed-key'));
    const run = await runCli(['audit', 'verify', file], { WARDEN_AUDIT_HMAC_KEY: key });
    expect(run.code).toBe(1);
    expect(run.stdout).toBe(`broken: head file ${headPath(file)} is invalid: its HMAC does not match (forged, or written with another key)\n`);
    await rm(headPath(file));
    const missing = await runCli(['audit', 'verify', file], { WARDEN_AUDIT_HMAC_KEY: key });
    expect(missing).toEqual({
      code: 0,
      stdout: 'ok: 3 lines verified\n',
      stderr: `mcp-warden audit: warning: no head file ${headPath(file)}: records removed from the end cannot be detected\n`,
    });
  });

  it('warns about a missing head file on stderr; --require-head makes it exit 1', async () => {
    const file = await writeLog(2);
    await rm(headPath(file));
    const warned = await runCli(['audit', 'verify', file]);
    expect(warned).toEqual({
      code: 0,
      stdout: 'ok: 2 lines verified\n',
      stderr: `mcp-warden audit: warning: no head file ${headPath(file)}: records removed from the end cannot be detected\n`,
    });
    const required = await runCli(['audit', 'verify', '--require-head', file]);
    expect(required).toEqual({
      code: 1,
      stdout: `broken: no head file ${headPath(file)} (required): records removed from the end cannot be detected\n`,
      stderr: '',
    });
  });

  const FILE = '<file>';
  it.each<[string, string[], RegExp]>([
    ['no subcommand', ['audit'], /missing subcommand/],
    ['an unknown subcommand', ['audit', 'frobnicate'], /unknown subcommand "frobnicate"/],
    ['no FILE', ['audit', 'verify'], /needs a FILE/],
    ['two FILEs', ['audit', 'verify', FILE, FILE], /one FILE/],
    ['an unknown option', ['audit', 'verify', FILE, '--bogus'], /--bogus/],
    ['a key on argv', ['audit', 'verify', FILE, '--hmac-key', 'secret-on-argv'], /never taken from the command line/],
    ['an unset key variable', ['audit', 'verify', FILE, '--hmac-key-env', 'UNSET_VAR'], /UNSET_VAR is not set/],
    ['a bad variable name', ['audit', 'verify', FILE, '--hmac-key-env', 'not a name'], /environment variable name/],
  ])('exits 2 on %s, with usage on stderr and nothing on stdout', async (_name, args, message) => {
    const file = await writeLog(1);
    const run = await runCli(args.map((a) => (a === FILE ? file : a)));
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(message);
    expect(run.stderr).toContain('usage: mcp-warden audit verify FILE');
    expect(run.stderr).not.toContain('secret-on-argv');
  });

  it('exits 2 when the file cannot be read', async () => {
    const run = await runCli(['audit', 'verify', join(dir, 'missing.jsonl')]);
    expect(run.code).toBe(2);
    expect(run.stdout).toBe('');
    expect(run.stderr).toMatch(/cannot read .*missing\.jsonl.*ENOENT/);
  });

  it('prints usage to stdout for help', async () => {
    const run = await runCli(['audit', '--help']);
    expect(run.code).toBe(0);
    expect(run.stdout).toContain('usage: mcp-warden audit verify FILE [--hmac-key-env VAR] [--require-head]');
  });
});
