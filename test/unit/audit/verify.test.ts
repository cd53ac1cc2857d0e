import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { appendFile, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AuditLog, GENESIS_PREV, type AuditLogOptions } from '../../../src/audit/auditLog.js';
import { formatHead, headPath } from '../../../src/audit/head.js';
import { verifyAuditFile } from '../../../src/audit/verify.js';

let dir: string;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-verify-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha256 = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');

function freshPath(): string {
  counter += 1;
  return join(dir, `audit-${counter}.jsonl`);
}

/** A real log of `count` records; returns its path and its lines. */
async function goodLog(count: number, options: Omit<AuditLogOptions, 'file'> = {}): Promise<{ file: string; lines: string[] }> {
  const file = freshPath();
  const log = await AuditLog.open({ ...options, file });
  for (let i = 1; i <= count; i += 1) log.record('tool.call', { session: 's1', tool: `tool-${i}`, allowed: i % 2 === 0 });
  await log.close();
  const text = await readFile(file, 'utf8');
  return { file, lines: text.slice(0, -1).split('\n') };
}

async function rewrite(file: string, lines: readonly string[]): Promise<void> {
  await writeFile(file, lines.map((l) => `${l}\n`).join(''));
}

/** `line` with one field changed, re-serialized the way the log writes it. */
function edit(line: string, change: Record<string, unknown>): string {
  return JSON.stringify({ ...(JSON.parse(line) as Record<string, unknown>), ...change });
}

describe('verifyAuditFile', () => {
  it('accepts an empty file with 0 lines', async () => {
    const file = freshPath();
    await writeFile(file, '');
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: true, lines: 0, head: 'missing', warnings: [] });
  });

  it('accepts an intact file', async () => {
    const { file } = await goodLog(5);
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: true, lines: 5, head: 'matches', warnings: [] });
  });

  it('accepts a last line without its line break', async () => {
    const { file, lines } = await goodLog(3);
    await writeFile(file, lines.join('\n'));
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: true, lines: 3, head: 'matches', warnings: [] });
  });

  it('reports an edited field at the next line, naming the edited one', async () => {
    const { file, lines } = await goodLog(3);
    lines[1] = edit(lines[1]!, { allowed: false });
    await rewrite(file, lines);
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: false,
      line: 3,
      reason: 'chain broken (prev does not match line 2)',
      lines: 3,
    });
  });

  it('reports an edit of the last line through the head file; without one, it cannot be seen', async () => {
    // Inherent to a hash chain: no later line vouches for the newest one; the head file does.
    const { file, lines } = await goodLog(3);
    lines[2] = edit(lines[2]!, { tool: 'other' });
    await rewrite(file, lines);
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: false,
      line: 3,
      reason: `this line (seq 3) is not the record the head file ${headPath(file)} vouches for`,
      lines: 3,
    });
    await rm(headPath(file));
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: true,
      lines: 3,
      head: 'missing',
      warnings: [`no head file ${headPath(file)}: records removed from the end cannot be detected`],
    });
  });

  it('reports a deleted line', async () => {
    const { file, lines } = await goodLog(4);
    lines.splice(1, 1);
    await rewrite(file, lines);
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: false,
      line: 2,
      reason: 'chain broken (prev does not match line 1)',
      lines: 3,
    });
  });

  it('reports a deleted first line', async () => {
    const { file, lines } = await goodLog(3);
    await rewrite(file, lines.slice(1));
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: false,
      line: 1,
      reason: 'chain broken (first line prev is not zero)',
      lines: 2,
    });
  });

  it('reports reordered lines', async () => {
    const { file, lines } = await goodLog(4);
    [lines[1], lines[2]] = [lines[2]!, lines[1]!];
    await rewrite(file, lines);
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: false,
      line: 2,
      reason: 'chain broken (prev does not match line 1)',
      lines: 4,
    });
  });

  it('reports an appended forged line with a made-up prev', async () => {
    const { file, lines } = await goodLog(3);
    const forged = edit(lines[2]!, { seq: 4, tool: 'forged', prev: 'a'.repeat(64) });
    await appendFile(file, `${forged}\n`);
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: false,
      line: 4,
      reason: 'chain broken (prev does not match line 3)',
      lines: 4,
    });
  });

  it('needs an HMAC key to catch a forger who recomputes the chain', async () => {
    const plain = await goodLog(3);
    const forgedPlain = edit(plain.lines[2]!, { seq: 4, tool: 'forged', prev: sha256(plain.lines[2]!) });
    await appendFile(plain.file, `${forgedPlain}\n`);
    // Plain SHA-256 is public: a recomputed chain verifies; the line is only beyond the head.
    await expect(verifyAuditFile(plain.file)).resolves.toEqual({
      ok: true,
      lines: 4,
      head: 'matches',
      warnings: ['1 line(s) after seq 3 are not covered by the head file (written just before a crash, or appended since)'],
    });
    // ... and the head file is as public: rewritten to the forged line, nothing shows.
    const bytes = (await readFile(plain.file)).length;
    await writeFile(headPath(plain.file), formatHead({ seq: 4, hash: sha256(forgedPlain), bytes }, undefined));
    await expect(verifyAuditFile(plain.file)).resolves.toEqual({ ok: true, lines: 4, head: 'matches', warnings: [] });

    const keyed = await goodLog(3, { hmacKey: 'the key' });
    const forgedKeyed = edit(keyed.lines[2]!, { seq: 4, tool: 'forged', prev: sha256(keyed.lines[2]!) });
    await appendFile(keyed.file, `${forgedKeyed}\n`);
    await expect(verifyAuditFile(keyed.file, { hmacKey: 'the key' })).resolves.toEqual({
      ok: false,
      line: 4,
      reason: 'chain broken (prev does not match line 3)',
      lines: 4,
    });
  });

  it('reports a truncated last line', async () => {
    const { file, lines } = await goodLog(3);
    const text = lines.join('\n');
    await writeFile(file, text.slice(0, text.length - 20));
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: false, line: 3, reason: 'not JSON', lines: 3 });
  });

  it('reports a blank line and JSON that is not an object as not JSON', async () => {
    const { file, lines } = await goodLog(3);
    await rewrite(file, [lines[0]!, '', ...lines.slice(1)]);
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: false, line: 2, reason: 'not JSON', lines: 4 });
    await rewrite(file, [lines[0]!, '[1,2]']);
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: false, line: 2, reason: 'not JSON', lines: 2 });
  });

  it('reports a line without prev', async () => {
    const { file, lines } = await goodLog(3);
    const { prev: _prev, ...rest } = JSON.parse(lines[1]!) as Record<string, unknown>;
    lines[1] = JSON.stringify(rest);
    await rewrite(file, lines);
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: false, line: 2, reason: 'missing prev', lines: 3 });
  });

  it('reports a sequence gap in an otherwise valid chain', async () => {
    const first = JSON.stringify({ ts: 't', seq: 1, event: 'a', prev: GENESIS_PREV });
    const second = JSON.stringify({ ts: 't', seq: 3, event: 'b', prev: sha256(first) });
    const file = freshPath();
    await rewrite(file, [first, second]);
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: false, line: 2, reason: 'sequence gap', lines: 2 });
  });

  it('reports a line without a usable seq', async () => {
    const file = freshPath();
    await rewrite(file, [JSON.stringify({ event: 'a', seq: '1', prev: GENESIS_PREV })]);
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: false, line: 1, reason: 'missing seq', lines: 1 });
  });

  it('reports the first break and still counts every line', async () => {
    const { file, lines } = await goodLog(6);
    lines[1] = edit(lines[1]!, { tool: 'x' });
    lines[3] = 'junk';
    await rewrite(file, lines);
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: false,
      line: 3,
      reason: 'chain broken (prev does not match line 2)',
      lines: 6,
    });
  });

  it('rejects when the file cannot be read', async () => {
    await expect(verifyAuditFile(join(dir, 'missing.jsonl'))).rejects.toMatchObject({ code: 'ENOENT' });
    await expect(verifyAuditFile(dir)).rejects.toMatchObject({ code: 'EISDIR' });
  });

  it('rejects an empty HMAC key', async () => {
    const { file } = await goodLog(1);
    await expect(verifyAuditFile(file, { hmacKey: '' })).rejects.toThrow(TypeError);
  });
});

describe('verifyAuditFile and the head file', () => {
  /** Keeps the first `keep` lines, as someone removing the newest records would. */
  async function keepFirst(file: string, lines: readonly string[], keep: number): Promise<void> {
    await rewrite(file, lines.slice(0, keep));
  }

  /** Reopens a closed log, records `events`, closes it. */
  async function reopen(file: string, events: readonly string[], options: Omit<AuditLogOptions, 'file'> = {}): Promise<void> {
    const log = await AuditLog.open({ ...options, file, onGap: () => undefined });
    for (const event of events) log.record(event, {});
    await log.close();
  }

  it('fails when the newest records were removed, saying how many', async () => {
    const { file, lines } = await goodLog(5);
    await keepFirst(file, lines, 3);
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: false,
      reason: '2 record(s) missing at the end: the head file says the trail ends at seq 5; the file ends at seq 3',
      lines: 3,
    });
  });

  it('fails when every record was removed', async () => {
    const { file } = await goodLog(4);
    await truncate(file, 0);
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: false,
      reason: '4 record(s) missing at the end: the head file says the trail ends at seq 4; the file is empty',
      lines: 0,
    });
  });

  it('without a head file, warns; with requireHead, fails', async () => {
    const { file } = await goodLog(2);
    await rm(headPath(file));
    const warning = `no head file ${headPath(file)}: records removed from the end cannot be detected`;
    await expect(verifyAuditFile(file)).resolves.toEqual({ ok: true, lines: 2, head: 'missing', warnings: [warning] });
    await expect(verifyAuditFile(file, { requireHead: true })).resolves.toEqual({
      ok: false,
      reason: `no head file ${headPath(file)} (required): records removed from the end cannot be detected`,
      lines: 2,
    });
    const empty = freshPath();
    await writeFile(empty, '');
    await expect(verifyAuditFile(empty, { requireHead: true })).resolves.toMatchObject({ ok: false, lines: 0 });
  });

  it('with a key, refuses a head file forged to match a truncated trail', async () => {
    const key = 'verify-head-key';
    const { file, lines } = await goodLog(5, { hmacKey: key });
    await keepFirst(file, lines, 3);
    const bytes = (await readFile(file)).length;
    // Without the key, the forger can compute neither the line's HMAC nor the head's.
    const seq3 = { seq: 3, hash: sha256(lines[2]!), bytes };
    await writeFile(headPath(file), formatHead(seq3, 'a guessed key'));
    await expect(verifyAuditFile(file, { hmacKey: key })).resolves.toEqual({
      ok: false,
      reason: `head file ${headPath(file)} is invalid: its HMAC does not match (forged, or written with another key)`,
      lines: 3,
    });
    await writeFile(headPath(file), formatHead(seq3, undefined));
    await expect(verifyAuditFile(file, { hmacKey: key })).resolves.toMatchObject({
      ok: false,
      reason: expect.stringContaining('it has no HMAC but the trail is keyed'),
    });
  });

  it('refuses a keyed head file when no key is given, and a head file that is not one', async () => {
    const { file } = await goodLog(1, { hmacKey: 'k' });
    await expect(verifyAuditFile(file)).resolves.toMatchObject({ ok: false, reason: expect.stringContaining('carries an HMAC but no key is set') });
    await expect(verifyAuditFile(file, { hmacKey: 'k' })).resolves.toMatchObject({ ok: true, head: 'matches' });
    for (const text of ['', '{"version":1}', '[]', `{"version":2,"seq":1,"hash":"${'0'.repeat(64)}","bytes":1}`]) {
      await writeFile(headPath(file), text);
      await expect(verifyAuditFile(file, { hmacKey: 'k' })).resolves.toMatchObject({ ok: false, reason: expect.stringMatching(/^head file .* is invalid: /) });
    }
  });

  it('fails on a gap the gateway recorded when it reopened a truncated trail, naming its line', async () => {
    const { file, lines } = await goodLog(5);
    await keepFirst(file, lines, 3);
    await reopen(file, ['after']);
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: false,
      line: 4,
      reason: 'the gateway recorded a gap in the trail here (records missing at the end)',
      lines: 5,
    });
  });

  it('warns about a trail the gateway reopened without a head file; requireHead fails there', async () => {
    const { file } = await goodLog(2);
    await rm(headPath(file));
    await reopen(file, ['after']);
    await expect(verifyAuditFile(file)).resolves.toEqual({
      ok: true,
      lines: 4,
      head: 'matches',
      warnings: ['line 3 records that the gateway found no head file: records removed before it cannot be detected'],
    });
    await expect(verifyAuditFile(file, { requireHead: true })).resolves.toEqual({
      ok: false,
      line: 3,
      reason: 'the gateway found no head file when it reopened the trail (required)',
      lines: 4,
    });
  });
});
