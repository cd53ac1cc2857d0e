/**
 * The head file beside a trail (`<file>.head`) and the check made when a trail is
 * reopened: the newest records removed while the log was closed are recorded as the first
 * event of the continuing chain (`audit_gap`) and reported to onGap, never silently
 * continued; with a key, a head file forged without it is refused the same way.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { copyFile, mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, AuditLogError, GENESIS_PREV, chainHash, type AuditGap, type AuditLogOptions } from '../../../src/audit/auditLog.js';
import { formatHead, headPath, parseHead } from '../../../src/audit/head.js';
import { verifyAuditFile } from '../../../src/audit/verify.js';
import { waitFor } from '../../helpers/procs.js';

let dir: string;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-audit-head-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

function freshPath(): string {
  counter += 1;
  return join(dir, `audit-${counter}.jsonl`);
}

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
type Entry = Record<string, any>;

async function linesOf(path: string): Promise<string[]> {
  const text = await readFile(path, 'utf8');
  return text.split('\n').filter((line) => line.length > 0);
}

/** Opens a log, records `count` tool calls (or the named events), closes it; returns what onGap and onError saw. */
async function writeLog(
  file: string,
  events: number | readonly string[],
  options: Omit<AuditLogOptions, 'file'> = {},
): Promise<{ gaps: AuditGap[]; errors: Error[] }> {
  const gaps: AuditGap[] = [];
  const errors: Error[] = [];
  const log = await AuditLog.open({ onGap: (gap) => gaps.push(gap), onError: (error) => errors.push(error), ...options, file });
  const names = typeof events === 'number' ? Array.from({ length: events }, (_, i) => `tool.call.${i + 1}`) : events;
  for (const name of names) log.record(name, { n: 1 });
  await log.close();
  return { gaps, errors };
}

/** Keeps the first `keep` lines of a closed trail: the newest records removed. */
async function keepFirst(file: string, keep: number): Promise<string[]> {
  const lines = (await linesOf(file)).slice(0, keep);
  await writeFile(file, lines.map((line) => `${line}\n`).join(''));
  return lines;
}

describe('the head file', () => {
  it('holds the seq, chain hash and byte length of the last line, owner-readable only', async () => {
    const file = freshPath();
    await writeLog(file, 3);
    const lines = await linesOf(file);
    const head = JSON.parse(await readFile(headPath(file), 'utf8')) as Entry;
    expect(head).toEqual({ version: 1, seq: 3, hash: sha256(lines[2]!), bytes: (await stat(file)).size });
    expect((await stat(headPath(file))).mode & 0o777).toBe(0o600);
    expect(headPath(file)).toBe(`${file}.head`);
  });

  it('carries an HMAC with a key, which only that key accepts', async () => {
    const file = freshPath();
    await writeLog(file, 2, { hmacKey: 'head-key' });
    const text = await readFile(headPath(file), 'utf8');
    const head = JSON.parse(text) as Entry;
    expect(head.hash).toBe(chainHash((await linesOf(file))[1]!, 'head-key'));
    expect(head.hmac).toMatch(/^[0-9a-f]{64}$/);
    expect(parseHead(text, 'head-key')).toMatchObject({ state: 'ok', head: { seq: 2 } });
    expect(parseHead(text, 'other-key')).toMatchObject({ state: 'invalid', reason: expect.stringContaining('HMAC does not match') });
    const tampered = JSON.stringify({ ...head, seq: 1 });
    expect(parseHead(tampered, 'head-key')).toMatchObject({ state: 'invalid' });
  });

  it('follows a burst of records and each reopening', async () => {
    const file = freshPath();
    await writeLog(file, 500);
    await writeLog(file, 2);
    const head = JSON.parse(await readFile(headPath(file), 'utf8')) as Entry;
    expect(head).toMatchObject({ seq: 502, bytes: (await stat(file)).size });
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: true, lines: 502, head: 'matches', warnings: [] });
  });

  it('is not written for a fresh log that records nothing', async () => {
    const file = freshPath();
    const { gaps } = await writeLog(file, 0);
    expect(gaps).toEqual([]);
    await expect(stat(headPath(file))).rejects.toMatchObject({ code: 'ENOENT' });
    expect(await readFile(file, 'utf8')).toBe('');
  });

  it('reports a head file that cannot be replaced to onError; the records are still written', async () => {
    const file = freshPath();
    await mkdir(headPath(file));
    await writeFile(join(headPath(file), 'occupied'), 'x');
    const { errors, gaps } = await writeLog(file, 2);
    // Unreadable as a head, it is also recorded as a gap when the log opens.
    expect(gaps.map((g) => g.fields.detail)).toEqual(['cannot read it (EISDIR)']);
    expect((await linesOf(file)).map((line) => (JSON.parse(line) as Entry).event)).toEqual(['audit_gap', 'tool.call.1', 'tool.call.2']);
    expect(errors.some((e) => e instanceof AuditLogError && /cannot update audit head file/.test(e.message))).toBe(true);
  });
});

describe('reopening a trail whose newest records were removed', () => {
  it('records audit_gap first, chained to the new last line, tells onGap, and verify fails', async () => {
    const file = freshPath();
    await writeLog(file, 5);
    const before = await linesOf(file);
    const kept = await keepFirst(file, 3);
    const { gaps } = await writeLog(file, ['after']);

    const lines = await linesOf(file);
    expect(lines.slice(0, 3)).toEqual(kept);
    const gap = JSON.parse(lines[3]!) as Entry;
    expect(gap).toMatchObject({
      seq: 4,
      event: 'audit_gap',
      prev: sha256(kept[2]!),
      reason: 'records missing at the end',
      headFile: headPath(file),
      missing: 2,
      expected: { seq: 5, hash: sha256(before[4]!), bytes: before.join('\n').length + 1 },
      found: { seq: 3, hash: sha256(kept[2]!), bytes: kept.join('\n').length + 1 },
    });
    expect(JSON.parse(lines[4]!)).toMatchObject({ seq: 5, event: 'after', prev: sha256(lines[3]!) });

    expect(gaps).toHaveLength(1);
    expect(gaps[0]).toMatchObject({ event: 'audit_gap', fields: { reason: 'records missing at the end', missing: 2 } });
    expect(gaps[0]!.message).toContain('2 record(s) missing at the end');
    expect(gaps[0]!.message).toContain(file);

    await expect(verifyAuditFile(file)).resolves.toMatchObject({ ok: false, line: 4, reason: expect.stringContaining('recorded a gap') });
    // The gap is recorded once: the head now vouches for the continued trail.
    expect((await writeLog(file, ['again'])).gaps).toEqual([]);
  });

  it('records the gap when every record was removed, starting a new chain', async () => {
    const file = freshPath();
    await writeLog(file, 4);
    await truncate(file, 0);
    const { gaps } = await writeLog(file, ['after']);
    const [gap, after] = (await linesOf(file)).map((line) => JSON.parse(line) as Entry);
    expect(gap).toMatchObject({ seq: 1, prev: GENESIS_PREV, event: 'audit_gap', missing: 4, expected: { seq: 4 }, found: { seq: 0, hash: null, bytes: 0 } });
    expect(after).toMatchObject({ seq: 2, event: 'after' });
    expect(gaps.map((g) => g.event)).toEqual(['audit_gap']);
  });

  it('records the gap when the file was deleted but its head file was not', async () => {
    const file = freshPath();
    await writeLog(file, 3);
    await rm(file);
    const { gaps } = await writeLog(file, ['after']);
    expect(JSON.parse((await linesOf(file))[0]!)).toMatchObject({ seq: 1, event: 'audit_gap', missing: 3 });
    expect(gaps).toHaveLength(1);
  });

  it('records a rewritten newest line, even at the same length, as "tail differs from head"', async () => {
    const file = freshPath();
    await writeLog(file, 3);
    const lines = await linesOf(file);
    const last = lines[2]!.replace('"n":1', '"n":2');
    expect(last.length).toBe(lines[2]!.length);
    await writeFile(file, [lines[0], lines[1], last].map((line) => `${line}\n`).join(''));
    const { gaps } = await writeLog(file, ['after']);
    expect(JSON.parse((await linesOf(file))[3]!)).toMatchObject({
      seq: 4,
      event: 'audit_gap',
      reason: 'tail differs from head',
      expected: { seq: 3, hash: sha256(lines[2]!) },
      found: { seq: 3, hash: sha256(last) },
    });
    expect(gaps).toHaveLength(1);
  });

  it('with a key, records a head file forged to match the truncated trail as invalid', async () => {
    const file = freshPath();
    const hmacKey = 'keyed-head-0123456789';
    await writeLog(file, 5, { hmacKey });
    const kept = await keepFirst(file, 3);
    // The forger knows the plain hash and the byte count, not the key.
    const forged = { seq: 3, hash: sha256(kept[2]!), bytes: kept.join('\n').length + 1 };
    await writeFile(headPath(file), formatHead(forged, 'not-the-key'));
    const { gaps } = await writeLog(file, ['after'], { hmacKey });
    expect(JSON.parse((await linesOf(file))[3]!)).toMatchObject({
      event: 'audit_gap',
      reason: 'head file invalid',
      detail: 'its HMAC does not match (forged, or written with another key)',
    });
    expect(gaps[0]!.message).toContain('is invalid');
    await expect(verifyAuditFile(file, { hmacKey })).resolves.toMatchObject({ ok: false, line: 4 });
  });

  it('records audit_head_missing for a trail without a head file', async () => {
    const file = freshPath();
    await writeLog(file, 2);
    await rm(headPath(file));
    const { gaps } = await writeLog(file, ['after']);
    expect(JSON.parse((await linesOf(file))[2]!)).toMatchObject({ seq: 3, event: 'audit_head_missing', headFile: headPath(file), found: { seq: 2 } });
    expect(gaps.map((g) => g.event)).toEqual(['audit_head_missing']);
  });

  it('accepts lines written after the head was last updated (a crash before the update)', async () => {
    const file = freshPath();
    await writeLog(file, 3);
    const saved = join(dir, `saved-${counter}.head`);
    await copyFile(headPath(file), saved);
    await writeLog(file, 2);
    await copyFile(saved, headPath(file)); // as if the process died before updating it
    const { gaps } = await writeLog(file, ['after']);
    expect(gaps).toEqual([]);
    const entries = (await linesOf(file)).map((line) => JSON.parse(line) as Entry);
    expect(entries.map((e) => e.event)).not.toContain('audit_gap');
    expect(entries.at(-1)).toMatchObject({ seq: 6, event: 'after' });
  });

  it('without onGap, reports the gap to onError', async () => {
    const file = freshPath();
    await writeLog(file, 3);
    await keepFirst(file, 1);
    const errors: Error[] = [];
    const log = await AuditLog.open({ file, onError: (error) => errors.push(error) });
    await log.close();
    expect(errors).toHaveLength(1);
    expect(errors[0]).toBeInstanceOf(AuditLogError);
    expect(errors[0]!.message).toContain('2 record(s) missing at the end');
    expect(JSON.parse((await linesOf(file))[1]!)).toMatchObject({ event: 'audit_gap' });
  });
});

describe('changes made while the log is open', () => {
  /** Resolves once the head file vouches for `seq` (the lines before it are written). */
  const headAt = (file: string, seq: number) =>
    waitFor(async () => (JSON.parse(await readFile(headPath(file), 'utf8')) as Entry).seq === seq, { message: `head at seq ${seq}` });

  it('truncation: the next line breaks the chain, and the next opening records the gap', async () => {
    const file = freshPath();
    const log = await AuditLog.open({ file });
    for (let i = 0; i < 3; i += 1) log.record('before', { i });
    await headAt(file, 3);
    await truncate(file, 0);
    log.record('after', {});
    await log.close();
    await expect(verifyAuditFile(file)).resolves.toMatchObject({ ok: false, line: 1, reason: 'chain broken (first line prev is not zero)' });
    const { gaps } = await writeLog(file, ['reopened']);
    expect(gaps.map((g) => g.fields.reason)).toEqual(['records missing at the end']);
  });

  it('deletion: head updates fail loudly, and the next opening records the gap', async () => {
    const file = freshPath();
    const errors: Error[] = [];
    const log = await AuditLog.open({ file, onError: (error) => errors.push(error) });
    log.record('before', {});
    await headAt(file, 1);
    await rm(file);
    log.record('after', {});
    await log.close();
    // Once when the line is written, once more when close() retries.
    expect(errors.length).toBeGreaterThanOrEqual(1);
    for (const error of errors) expect(error.message).toMatch(/^cannot update audit head file .*ENOENT/);
    const { gaps } = await writeLog(file, ['reopened']);
    expect(gaps.map((g) => g.fields)).toEqual([expect.objectContaining({ reason: 'records missing at the end', missing: 1 })]);
  });
});
