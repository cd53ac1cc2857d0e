/**
 * The whitelist as a document: what is written reads back the same, in order, with any
 * key; validation is the loader's own; env values never show.
 */
import { describe, expect, it } from '@jest/globals';
import { parseCommands } from '../../../src/config/commands.js';
import { HIDDEN, parseDocument, serializeDocument, shownEntry, validateDocument, withEntry, withoutEntry } from '../../../src/whitelist/document.js';

const TEXT = `{
  "$schema": "./schema/allowed-commands.schema.json",
  "b": { "command": "node", "args": ["b.js"] },
  "a": {}
}`;

describe('whitelist documents', () => {
  it('keeps $schema apart and the entries in file order', () => {
    const doc = parseDocument(TEXT, 'f.json');
    expect(doc.schema).toBe('./schema/allowed-commands.schema.json');
    expect([...doc.entries.keys()]).toEqual(['b', 'a']);
  });

  it('writes 2-space JSON with $schema first, short scalar arrays on one line, a final newline', () => {
    const text = serializeDocument(withEntry(parseDocument(TEXT, 'f.json'), 'c', { description: 'C', args: ['-y', 'pkg'], env: { A: '1' } }));
    expect(text).toBe(
      [
        '{',
        '  "$schema": "./schema/allowed-commands.schema.json",',
        '  "b": {',
        '    "command": "node",',
        '    "args": ["b.js"]',
        '  },',
        '  "a": {},',
        '  "c": {',
        '    "description": "C",',
        '    "args": ["-y", "pkg"],',
        '    "env": {',
        '      "A": "1"',
        '    }',
        '  }',
        '}',
        '',
      ].join('\n'),
    );
    expect(parseDocument(text, 'f.json')).toEqual(withEntry(parseDocument(TEXT, 'f.json'), 'c', { description: 'C', args: ['-y', 'pkg'], env: { A: '1' } }));
  });

  it('puts a long argument list one item per line', () => {
    const args = Array.from({ length: 12 }, (_, i) => `--argument-number-${i}`);
    const text = serializeDocument({ schema: undefined, entries: new Map([['x', { command: 'x', args }]]) });
    expect(text).toContain('"args": [\n      "--argument-number-0",\n');
    expect(JSON.parse(text)).toEqual({ x: { command: 'x', args } });
  });

  it('writes and reads back a "__proto__" key as an entry, without touching any prototype', () => {
    const doc = withEntry(parseDocument('{"a": {}}', 'f.json'), '__proto__', { command: 'x' });
    const back = parseDocument(serializeDocument(doc), 'f.json');
    expect([...back.entries.keys()]).toEqual(['a', '__proto__']);
    expect(({} as Record<string, unknown>).command).toBeUndefined();
  });

  it('validates as the loader does, relative cwd from the file folder', () => {
    const doc = parseDocument('{"x": {"command": "node", "cwd": "sub"}}', '/srv/w/allowed-commands.json');
    expect(validateDocument(doc, '/srv/w/allowed-commands.json')).toEqual(
      parseCommands({ x: { command: 'node', cwd: 'sub' } }, '/srv/w', '/srv/w/allowed-commands.json'),
    );
    expect(() => validateDocument(withEntry(doc, 'y', { argz: [] }), '/srv/w/f.json')).toThrow('/srv/w/f.json: entry "y": unknown field "argz"');
  });

  it('names the source on invalid JSON and on a top level that is not an object', () => {
    expect(() => parseDocument('{', 'redis key warden:whitelist')).toThrow(/^redis key warden:whitelist: invalid JSON/);
    expect(() => parseDocument('[]', 'f.json')).toThrow('f.json: top level must be a JSON object mapping command lines to entries, got an array');
  });

  it('removes an entry without changing the rest', () => {
    const doc = withoutEntry(parseDocument(TEXT, 'f.json'), 'b');
    expect([...doc.entries.keys()]).toEqual(['a']);
    expect(doc.schema).toBe('./schema/allowed-commands.schema.json');
  });

  it('never shows a fixed env value', () => {
    expect(shownEntry({ command: 'x', env: { TOKEN: 'ghp_secret' } })).toEqual({ command: 'x', env: { TOKEN: HIDDEN } });
    expect(shownEntry('npx x')).toBe('npx x');
  });
});
