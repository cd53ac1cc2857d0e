import { afterAll, afterEach, beforeAll, describe, expect, it, jest } from '@jest/globals';
import { createHash, createHmac } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, AuditLogError, GENESIS_PREV, MAX_STRING_LENGTH, OMITTED, chainHash, type AuditLogOptions } from '../../../src/audit/auditLog.js';
import { verifyAuditFile } from '../../../src/audit/verify.js';

let dir: string;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-audit-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  jest.restoreAllMocks();
});

function freshPath(): string {
  counter += 1;
  return join(dir, `audit-${counter}.jsonl`);
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
const hmac = (key: string, text: string) => createHmac('sha256', key).update(text, 'utf8').digest('hex');

/** The file's lines (the final line break removed). */
async function linesOf(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  expect(text.endsWith('\n')).toBe(true);
  return text.slice(0, -1).split('\n');
}

/** Opens a log, records `events`, closes it. */
async function writeLog(options: AuditLogOptions, events: ReadonlyArray<[string, Record<string, unknown>]>): Promise<void> {
  const log = await AuditLog.open(options);
  for (const [event, fields] of events) log.record(event, fields);
  await log.close();
}

/** Records one event into a fresh file and returns the parsed line. */
async function recordOne(fields: Record<string, unknown>, event = 'test'): Promise<{ line: string; entry: Record<string, unknown> }> {
  const file = freshPath();
  await writeLog({ file }, [[event, fields]]);
  const lines = await linesOf(file);
  expect(lines).toHaveLength(1);
  return { line: lines[0]!, entry: JSON.parse(lines[0]!) as Record<string, unknown> };
}

describe('AuditLog chain', () => {
  it('writes one JSON object per line: ts, seq, event, fields, prev chained by SHA-256', async () => {
    const file = freshPath();
    await writeLog({ file }, [
      ['session.open', { session: 's1', command: 'echo' }],
      ['tool.call', { session: 's1', tool: 'add', allowed: true }],
      ['session.close', { session: 's1' }],
    ]);
    const lines = await linesOf(file);
    expect(lines).toHaveLength(3);
    const entries = lines.map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(Object.keys(entries[1]!)).toEqual(['ts', 'seq', 'event', 'session', 'tool', 'allowed', 'prev']);
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(entries.map((e) => e.event)).toEqual(['session.open', 'tool.call', 'session.close']);
    expect(entries[1]).toMatchObject({ session: 's1', tool: 'add', allowed: true });
    for (const entry of entries) {
      expect(typeof entry.ts).toBe('string');
      expect(new Date(entry.ts as string).toISOString()).toBe(entry.ts);
    }
    expect(entries[0]!.prev).toBe(GENESIS_PREV);
    expect(GENESIS_PREV).toMatch(/^0{64}$/);
    expect(entries[1]!.prev).toBe(sha256(lines[0]!));
    expect(entries[2]!.prev).toBe(sha256(lines[1]!));
    expect(chainHash(lines[0]!)).toBe(sha256(lines[0]!));
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: true, lines: 3, head: 'matches', warnings: [] });
  });

  it('keys the chain with HMAC-SHA256; it verifies only with the same key', async () => {
    const file = freshPath();
    const key = 'k3y-for-the-audit-chain';
    await writeLog({ file, hmacKey: key }, [
      ['a', { n: 1 }],
      ['b', { n: 2 }],
      ['c', { n: 3 }],
    ]);
    const lines = await linesOf(file);
    const entries = lines.map((l) => JSON.parse(l) as { prev: string });
    expect(entries[0]!.prev).toBe(GENESIS_PREV);
    expect(entries[1]!.prev).toBe(hmac(key, lines[0]!));
    expect(entries[2]!.prev).toBe(hmac(key, lines[1]!));
    expect(entries[1]!.prev).not.toBe(sha256(lines[0]!));
    await expect(verifyAuditFile(file, { hmacKey: key })).resolves.toEqual({ ok: true, lines: 3, head: 'matches', warnings: [] });
    // Line 1 carries the zero prev, so any key accepts it; line 2 is the first to differ.
    const broken = { ok: false, line: 2, reason: 'chain broken (prev does not match line 1)', lines: 3 };
    await expect(verifyAuditFile(file, { hmacKey: 'wrong key' })).resolves.toEqual(broken);
    await expect(verifyAuditFile(file)).resolves.toEqual(broken);
  });

  it('continues the chain and seq when reopening a file', async () => {
    const file = freshPath();
    await writeLog({ file }, [
      ['first', {}],
      ['second', {}],
    ]);
    await writeLog({ file }, [['third', {}]]);
    await writeLog({ file }, [
      ['fourth', {}],
      ['fifth', {}],
    ]);
    const lines = await linesOf(file);
    const entries = lines.map((l) => JSON.parse(l) as { seq: number; event: string; prev: string });
    expect(entries.map((e) => e.seq)).toEqual([1, 2, 3, 4, 5]);
    expect(entries.map((e) => e.event)).toEqual(['first', 'second', 'third', 'fourth', 'fifth']);
    expect(entries[2]!.prev).toBe(sha256(lines[1]!));
    expect(entries[3]!.prev).toBe(sha256(lines[2]!));
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: true, lines: 5, head: 'matches', warnings: [] });
  });

  it('continues an HMAC chain when reopened with the same key', async () => {
    const file = freshPath();
    await writeLog({ file, hmacKey: 'k' }, [['a', {}]]);
    await writeLog({ file, hmacKey: 'k' }, [['b', {}]]);
    await expect(verifyAuditFile(file, { hmacKey: 'k' })).resolves.toEqual({ ok: true, lines: 2, head: 'matches', warnings: [] });
  });

  it('starts a new chain in an empty existing file', async () => {
    const file = freshPath();
    await writeFile(file, '');
    await writeLog({ file }, [['a', {}]]);
    const [line] = await linesOf(file);
    expect(JSON.parse(line!)).toMatchObject({ seq: 1, prev: GENESIS_PREV });
  });

  it('after a partial last line, starts on a new line chained to the partial text; verify flags the partial line', async () => {
    const file = freshPath();
    await writeLog({ file }, [
      ['a', {}],
      ['b', {}],
    ]);
    const partial = '{"ts":"2024-01-01T00:00:00.000Z","seq":3,"ev';
    await appendFile(file, partial); // a crash mid-write: no line break
    await writeLog({ file }, [['c', {}]]);
    const lines = await linesOf(file);
    expect(lines).toHaveLength(4);
    expect(lines[2]).toBe(partial);
    const entry = JSON.parse(lines[3]!) as { seq: number; prev: string; event: string };
    expect(entry.event).toBe('c');
    expect(entry.prev).toBe(sha256(partial));
    expect(entry.seq).toBe(4); // line 2 had seq 2, the partial line took 3
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: false, line: 3, reason: 'not JSON', lines: 4 });
  });

  it('after a corrupt complete last line, chains to its text', async () => {
    const file = freshPath();
    await writeLog({ file }, [['a', {}]]);
    await appendFile(file, 'garbage\n');
    await writeLog({ file }, [['b', {}]]);
    const lines = await linesOf(file);
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[2]!)).toMatchObject({ seq: 3, prev: sha256('garbage') });
  });

  it('numbers lines from the line count when no line of an existing file has a seq', async () => {
    const file = freshPath();
    await writeFile(file, 'one\ntwo\n');
    await writeLog({ file }, [['a', {}]]);
    const lines = await linesOf(file);
    expect(JSON.parse(lines[2]!)).toMatchObject({ seq: 3, prev: sha256('two') });
  });

  it('finds the end of a chain whose last lines are longer than the read chunk', async () => {
    const file = freshPath();
    const big = Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`f${i}`, 'x'.repeat(4000)]));
    await writeLog({ file }, [
      ['small', {}],
      ['big', big],
      ['big', big],
    ]);
    await writeLog({ file }, [['after', {}]]);
    const lines = await linesOf(file);
    expect(lines[2]!.length).toBeGreaterThan(150_000);
    expect(JSON.parse(lines[3]!)).toMatchObject({ seq: 4, prev: sha256(lines[2]!) });
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: true, lines: 4, head: 'matches', warnings: [] });
  });

  it('treats CRLF line breaks like readline does, also when a CRLF straddles a read chunk', async () => {
    const file = freshPath();
    await writeLog({ file }, [
      ['a', {}],
      ['b', {}],
    ]);
    const crlf = (await readFile(file, 'utf8')).replaceAll('\n', '\r\n');
    // A corrupt last line of 65535 bytes puts the CRLF before it across the 64 KiB chunk
    // boundary counted from the end; seq must still count it as one line after line 2.
    const corrupt = 'z'.repeat(65_535);
    await writeFile(file, `${crlf}${corrupt}\r\n`);
    await writeLog({ file }, [['c', {}]]);
    const text = await readFile(file, 'utf8');
    // The rewrite also moved the end the head file vouches for: the reopened log records
    // that gap first, chained to the corrupt line, then 'c'.
    const after = text
      .slice(text.indexOf(corrupt) + corrupt.length + 2)
      .split('\n')
      .filter(Boolean);
    const [gap, last] = after.map((line) => JSON.parse(line) as { seq: number; prev: string; event: string });
    expect(gap).toMatchObject({ seq: 4, prev: sha256(corrupt), event: 'audit_gap' });
    expect(last).toMatchObject({ seq: 5, event: 'c' });
    await expect(verifyAuditFile(file)).resolves.toMatchObject({ ok: false, line: 3, reason: 'not JSON', lines: 5 });
  });

  it('keeps many records in order', async () => {
    const file = freshPath();
    const log = await AuditLog.open({ file });
    for (let i = 0; i < 2000; i += 1) log.record('tick', { i, pad: 'p'.repeat(200) });
    await log.close();
    const entries = (await linesOf(file)).map((l) => JSON.parse(l) as { i: number; seq: number });
    expect(entries.map((e) => e.i)).toEqual(Array.from({ length: 2000 }, (_, i) => i));
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: true, lines: 2000, head: 'matches', warnings: [] });
  });

  it('creates the file readable by its owner only', async () => {
    const file = freshPath();
    await writeLog({ file }, [['a', {}]]);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
  });
});

describe('AuditLog line hygiene', () => {
  it('escapes control characters so that each record is one printable line', async () => {
    const value = 'red\u001b[31mX\u001b[0m|ls\u2028ps\u2029nel\u0085del\u007fc1\u009b|cr\rlf\n|tab\t|nul\u0000|bell\u0007';
    const { line, entry } = await recordOne({ value, ['key\u001b]0;title\u0007']: 'k' }, 'ev\u2028ent');
    // eslint-disable-next-line no-control-regex -- control characters are what must not be there
    expect(line).not.toMatch(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]/);
    expect(line).toContain('\\u001b[31m');
    expect(line).toContain('\\u2028');
    expect(line).toContain('\\u0085');
    expect(line).toContain('\\u007f');
    // Escaping is lossless.
    expect(entry.value).toBe(value);
    expect(entry.event).toBe('ev\u2028ent');
    expect(entry['key\u001b]0;title\u0007']).toBe('k');
  });

  it('replaces secret-like keys with "[omitted]", also nested', async () => {
    const { line, entry } = await recordOne({
      token: 'tok-value-one',
      apiToken: 'tok-value-two',
      clientSecret: 'sec-value',
      PASSWORD: 'pass-value',
      authorization: 'Bearer bearer-value',
      Cookie: 'cookie-value',
      env: { HOME: '/home-value' },
      ENV_API_KEY: 'env-key-value',
      env_path: 'env-path-value',
      environment: 'production',
      envelope: 'kept',
      headers: { 'set-cookie': 'set-cookie-value', accept: 'json' },
      list: [{ refresh_token: 'refresh-value' }],
    });
    // Values that cannot occur in the line's own fields (an ISO timestamp holds T10..T23, digits, Z).
    for (const secret of [
      'tok-value-one',
      'tok-value-two',
      'sec-value',
      'pass-value',
      'bearer-value',
      'cookie-value',
      'home-value',
      'env-key-value',
      'env-path-value',
      'set-cookie-value',
      'refresh-value',
    ]) {
      expect(line).not.toContain(secret);
    }
    expect(entry).toMatchObject({
      token: OMITTED,
      apiToken: OMITTED,
      clientSecret: OMITTED,
      PASSWORD: OMITTED,
      authorization: OMITTED,
      Cookie: OMITTED,
      env: OMITTED,
      ENV_API_KEY: OMITTED,
      env_path: OMITTED,
      environment: 'production',
      envelope: 'kept',
      headers: { 'set-cookie': OMITTED, accept: 'json' },
      list: [{ refresh_token: OMITTED }],
    });
  });

  it('cuts long strings to 4096 characters plus a marker, without splitting a surrogate pair', async () => {
    const { entry } = await recordOne({
      long: 'a'.repeat(10_000),
      exact: 'b'.repeat(MAX_STRING_LENGTH),
      emoji: `${'c'.repeat(MAX_STRING_LENGTH - 1)}😀tail`,
      nested: { deep: 'd'.repeat(5000) },
    });
    expect(MAX_STRING_LENGTH).toBe(4096);
    expect(entry.long).toBe(`${'a'.repeat(4096)}…[truncated]`);
    expect(entry.exact).toBe('b'.repeat(4096));
    expect(entry.emoji).toBe(`${'c'.repeat(4095)}…[truncated]`);
    expect((entry.nested as { deep: string }).deep).toBe(`${'d'.repeat(4096)}…[truncated]`);
  });

  it('does not let fields override ts, seq, event or prev', async () => {
    const { entry } = await recordOne({ ts: 'forged', seq: 99, event: 'forged', prev: 'f'.repeat(64), ok: 1 }, 'real');
    expect(entry).toMatchObject({ seq: 1, event: 'real', prev: GENESIS_PREV, ok: 1 });
    expect(entry.ts).not.toBe('forged');
  });

  it('writes values JSON cannot hold as-is without throwing', async () => {
    const circular: Record<string, unknown> = { name: 'loop' };
    circular.self = circular;
    const shared = { x: 1 };
    const { entry } = await recordOne({
      ...(JSON.parse('{"__proto__":{"polluted":true}}') as Record<string, unknown>),
      big: 12345678901234567890n,
      when: new Date('2024-05-06T07:08:09.000Z'),
      error: new Error('boom'),
      circular,
      twice: [shared, shared],
      nothing: undefined,
      fn: () => 1,
    });
    expect(entry).toMatchObject({
      big: '12345678901234567890',
      when: '2024-05-06T07:08:09.000Z',
      error: { name: 'Error', message: 'boom' },
      circular: { name: 'loop', self: '[circular]' },
      twice: [{ x: 1 }, { x: 1 }],
    });
    expect('nothing' in entry).toBe(false);
    expect('fn' in entry).toBe(false);
    expect(Object.getOwnPropertyDescriptor(entry, '__proto__')?.value).toEqual({ polluted: true });
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('reports a field that cannot be read to onError instead of throwing', async () => {
    const file = freshPath();
    const errors: Error[] = [];
    const log = await AuditLog.open({ file, onError: (e) => errors.push(e) });
    const hostile = {
      get boom(): string {
        throw new Error('getter failed');
      },
    };
    expect(() => log.record('bad', hostile)).not.toThrow();
    log.record('good', {});
    await log.close();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(AuditLogError);
    const lines = await linesOf(file);
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0]!)).toMatchObject({ event: 'good', seq: 1, prev: GENESIS_PREV });
  });
});

describe('AuditLog lifecycle', () => {
  it('close() is idempotent and flushes', async () => {
    const file = freshPath();
    const log = await AuditLog.open({ file });
    log.record('a', {});
    const first = log.close();
    const second = log.close();
    expect(second).toBe(first);
    await Promise.all([first, second]);
    await expect(log.close()).resolves.toBeUndefined();
    expect(await linesOf(file)).toHaveLength(1);
  });

  it('drops a record after close() and says so through onError', async () => {
    const file = freshPath();
    const errors: Error[] = [];
    const log = await AuditLog.open({ file, onError: (e) => errors.push(e) });
    log.record('a', {});
    await log.close();
    expect(() => log.record('late', {})).not.toThrow();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(AuditLogError);
    expect(errors[0]!.message).toContain('late');
    expect(await linesOf(file)).toHaveLength(1);
  });

  it('a disabled log writes nothing', async () => {
    const stderr = jest.spyOn(process.stderr, 'write');
    for (const log of [AuditLog.disabled(), await AuditLog.open({}), await AuditLog.open({ stderr: false })]) {
      expect(log.enabled).toBe(false);
      log.record('ignored', { a: 1 });
      await log.close();
      await log.close();
      log.record('after close', {});
    }
    expect(stderr).not.toHaveBeenCalled();
  });

  it('writes the same lines to stderr when asked', async () => {
    const file = freshPath();
    const written: string[] = [];
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const log = await AuditLog.open({ file, stderr: true });
    expect(log.enabled).toBe(true);
    log.record('a', { n: 1 });
    log.record('b', { n: 2 });
    await log.close();
    jest.restoreAllMocks();
    expect(written.join('')).toBe(await readFile(file, 'utf8'));
  });

  it('chains stderr-only records from the zero prev', async () => {
    const written: string[] = [];
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
    const log = await AuditLog.open({ stderr: true });
    log.record('a', {});
    log.record('b', {});
    await log.close();
    jest.restoreAllMocks();
    const lines = written.join('').split('\n');
    expect(lines).toHaveLength(3);
    expect(JSON.parse(lines[0]!)).toMatchObject({ seq: 1, prev: GENESIS_PREV });
    expect(JSON.parse(lines[1]!)).toMatchObject({ seq: 2, prev: sha256(lines[0]!) });
  });

  it('reports write failures to onError; record() never throws', async () => {
    const errors: Error[] = [];
    const log = await AuditLog.open({ file: '/dev/full', onError: (e) => errors.push(e) });
    expect(() => log.record('a', {})).not.toThrow();
    await log.close();
    expect(() => log.record('b', {})).not.toThrow();
    expect(errors.length).toBeGreaterThanOrEqual(1);
    expect((errors[0] as NodeJS.ErrnoException).code).toBe('ENOSPC');
  });

  it('rejects with AuditLogError when the file cannot be opened', async () => {
    await expect(AuditLog.open({ file: dir })).rejects.toBeInstanceOf(AuditLogError);
    const missingDir = join(dir, 'no-such-dir', 'audit.jsonl');
    await expect(AuditLog.open({ file: missingDir })).rejects.toThrow(/cannot open audit file/);
    expect(existsSync(missingDir)).toBe(false);
  });

  it('rejects bad options with a TypeError naming the option', async () => {
    await expect(AuditLog.open({ file: '' })).rejects.toThrow(new TypeError('options.file must be a non-empty path'));
    await expect(AuditLog.open({ file: freshPath(), hmacKey: '' })).rejects.toThrow(/options\.hmacKey/);
    await expect(AuditLog.open({ stderr: 'yes' as unknown as boolean })).rejects.toThrow(/options\.stderr/);
    await expect(AuditLog.open({ onError: 1 as unknown as () => void })).rejects.toThrow(/options\.onError/);
  });
});
