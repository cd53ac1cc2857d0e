/**
 * The two edits: every refusal names the entry and says what to do; a result is what the
 * loader accepts.
 */
import { describe, expect, it } from '@jest/globals';
import { parseDocument } from '../../../src/whitelist/document.js';
import { EditError, putEntry, removeEntry } from '../../../src/whitelist/edit.js';

const FILE = '/srv/w/allowed-commands.json';
const doc = parseDocument('{"github": {"command": "npx", "args": ["-y", "gh"]}, "fetch": {"command": "uvx", "args": ["mcp-server-fetch"]}}', FILE);

function refusal(run: () => unknown): EditError {
  try {
    run();
  } catch (error) {
    expect(error).toBeInstanceOf(EditError);
    return error as EditError;
  }
  throw new Error('expected an EditError');
}

describe('putEntry', () => {
  it('adds at the end and returns the specs the loader makes', () => {
    const result = putEntry(doc, 'files', { command: 'node', args: ['f.js'], allowedEnv: ['ROOT'] }, { file: FILE, replace: false });
    expect(result.replaced).toBe(false);
    expect([...result.doc.entries.keys()]).toEqual(['github', 'fetch', 'files']);
    expect(result.specs.find((s) => s.key === 'files')).toMatchObject({ command: 'node', args: ['f.js'], cwd: '/srv/w', allowedEnv: ['ROOT'] });
  });

  it('refuses an existing key unless asked to replace it, which keeps its place', () => {
    const error = refusal(() => putEntry(doc, 'github', {}, { file: FILE, replace: false }));
    expect(error.problem).toBe('exists');
    expect(error.message).toBe(`entry "github" already exists in ${FILE}; replace it with --replace (or remove it first)`);
    const replaced = putEntry(doc, 'github', { command: 'node' }, { file: FILE, replace: true });
    expect(replaced.replaced).toBe(true);
    expect([...replaced.doc.entries.keys()]).toEqual(['github', 'fetch']);
  });

  it('refuses an entry the loader refuses, naming it and the problem', () => {
    const error = refusal(() =>
      putEntry(doc, 'bad', { command: 'node', allowedEnv: ['LD_PRELOAD'] }, { file: FILE, source: 'redis key w:whitelist', replace: false }),
    );
    expect(error).toMatchObject({ problem: 'invalid', key: 'bad' });
    expect(error.message).toMatch(/^redis key w:whitelist: entry "bad": allowedEnv\[0\] "LD_PRELOAD" names a variable no client may ever set/);
    expect(refusal(() => putEntry(doc, ' padded', {}, { file: FILE, replace: false })).message).toContain(
      'entry " padded": key must not start or end with whitespace',
    );
    expect(refusal(() => putEntry(doc, 'x', { idle: 'never' }, { file: FILE, replace: false })).message).toContain(
      'entry "x": idle must be "keep" or "hibernate"',
    );
  });

  it('refuses "$schema" as a key', () => {
    expect(refusal(() => putEntry(doc, '$schema', {}, { file: FILE, replace: true })).message).toContain('reserved');
  });
});

describe('removeEntry', () => {
  it('removes, and refuses a missing key with the nearest one as a hint', () => {
    expect([...removeEntry(doc, 'fetch', { file: FILE }).doc.entries.keys()]).toEqual(['github']);
    const error = refusal(() => removeEntry(doc, 'githb', { file: FILE }));
    expect(error.problem).toBe('missing');
    expect(error.message).toBe(`no entry "githb" in ${FILE}; did you mean "github"?`);
    expect(refusal(() => removeEntry(doc, 'something-else-entirely', { file: FILE })).message).not.toContain('did you mean');
  });

  it('refuses to remove the last entry (the loader refuses an empty whitelist)', () => {
    const one = removeEntry(doc, 'fetch', { file: FILE }).doc;
    expect(refusal(() => removeEntry(one, 'github', { file: FILE })).message).toContain('"github" is the only one');
  });
});
