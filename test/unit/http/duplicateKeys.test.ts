/**
 * findDuplicateKey: a JSON object with the same key twice, keys compared after
 * unescaping. Runs on text that JSON.parse has already accepted.
 */
import { describe, expect, it } from '@jest/globals';
import { findDuplicateKey } from '../../../src/http/duplicateKeys.js';

/** Only valid JSON is ever given to findDuplicateKey. */
function dup(text: string): string | undefined {
  JSON.parse(text);
  return findDuplicateKey(text);
}

describe('findDuplicateKey', () => {
  it('finds a duplicate at the top level and returns the key', () => {
    expect(dup('{"name":"a","name":"b"}')).toBe('name');
    expect(dup('{"a":1,"b":2,"c":3,"b":4}')).toBe('b');
  });

  it('finds a duplicate whatever the values between are', () => {
    expect(dup('{"a":{"x":[1,{"y":2}]},"a":null}')).toBe('a');
    expect(dup('{"a":[1,2,3],"a":3}')).toBe('a');
    expect(dup('{"a":"}","a":"]"}')).toBe('a');
    expect(dup('{"a":true,"b":false,"a":null}')).toBe('a');
    expect(dup('{"a":-1.5e10,"a":0}')).toBe('a');
  });

  it('finds a duplicate in a nested object', () => {
    expect(dup('{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","name":"rm"}}')).toBe('name');
    expect(dup('{"a":{"b":{"c":{"d":1,"d":2}}}}')).toBe('d');
  });

  it('finds a duplicate inside an array of objects', () => {
    expect(dup('[{"id":1},{"id":2,"x":1,"x":2}]')).toBe('x');
    expect(dup('{"list":[{"k":1},[[{"k":1,"k":2}]]]}')).toBe('k');
  });

  it('tolerates whitespace and newlines anywhere JSON allows', () => {
    expect(dup('{\n  "a" : 1 ,\n\t"a"\r\n:\n2\n}')).toBe('a');
    expect(dup(' [ { "a" : 1 } , { "a" : 2 } ] ')).toBeUndefined();
  });

  it('compares keys after unescaping', () => {
    expect(dup('{"name":"a","na\\u006de":"b"}')).toBe('name');
    expect(dup('{"na\\u006De":"a","name":"b"}')).toBe('name');
    expect(dup('{"\\u006e\\u0061\\u006d\\u0065":1,"n\\u0061me":2}')).toBe('name');
    expect(dup('{"a\\/b":1,"a/b":2}')).toBe('a/b');
    // a surrogate pair written raw and escaped
    expect(dup('{"😀":1,"\\ud83d\\ude00":2}')).toBe('😀');
    // the same escape in both spellings
    expect(dup('{"tab\\there":1,"tab\\u0009here":2}')).toBe('tab\there');
  });

  it('handles keys containing escaped quotes and backslashes', () => {
    expect(dup('{"a\\"b":1,"a\\"b":2}')).toBe('a"b');
    expect(dup('{"a\\\\":1,"a\\\\":2}')).toBe('a\\');
    expect(dup('{"\\\\":1,"\\u005c":2}')).toBe('\\');
    // a key ending in a backslash does not swallow the next token
    expect(dup('{"x\\\\":1,"y":2,"y":3}')).toBe('y');
    expect(dup('{"q\\"":1,"q":2}')).toBeUndefined();
    expect(dup('{"a\\\\":1,"a":2}')).toBeUndefined();
  });

  it('does not confuse different keys that differ only by escaping', () => {
    // `\\u0061` is a backslash followed by "u0061", not "a"
    expect(dup('{"\\\\u0061":1,"a":2}')).toBeUndefined();
    expect(dup('{"A":1,"a":2}')).toBeUndefined();
    expect(dup('{"é":1,"e\\u0301":2}')).toBeUndefined(); // NFC vs NFD are different keys to JSON
  });

  it('the same key in sibling objects is not a duplicate', () => {
    expect(dup('{"a":{"name":1},"b":{"name":2}}')).toBeUndefined();
    expect(dup('[{"name":1},{"name":2},{"name":3}]')).toBeUndefined();
    expect(dup('{"a":{"k":1},"k":2}')).toBeUndefined();
    expect(dup('{"k":{"k":{"k":1}}}')).toBeUndefined();
  });

  it('string values that look like keys are not keys', () => {
    expect(dup('{"k":"x","x":1}')).toBeUndefined();
    expect(dup('{"x":1,"k":"x"}')).toBeUndefined();
    expect(dup('{"a":"\\",\\"a\\":1","b":2}')).toBeUndefined();
    expect(dup('{"a":["a","a"],"b":"a"}')).toBeUndefined();
    expect(dup('{"a":"{\\"b\\":1,\\"b\\":2}"}')).toBeUndefined();
    // brackets and braces inside strings do not change the nesting
    expect(dup('{"a":"[","b":1,"b":2}')).toBe('b');
    expect(dup('{"a":"{","b":1,"c":{"b":2}}')).toBeUndefined();
  });

  it('returns undefined for documents without objects or duplicates', () => {
    for (const text of ['{}', '[]', '"x"', '1', 'null', 'true', '[[],{}]', '{"a":{},"b":[]}', '"{\\"a\\":1,\\"a\\":2}"']) {
      expect(dup(text)).toBeUndefined();
    }
  });

  it('treats __proto__ and other Object.prototype names like any key', () => {
    expect(dup('{"__proto__":1,"__proto__":2}')).toBe('__proto__');
    expect(dup('{"constructor":1,"toString":2,"hasOwnProperty":3}')).toBeUndefined();
  });

  it('finds no duplicate in JSON.stringify output of random values', () => {
    let seed = 12345;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const alphabet = ['a', 'b', '"', '\\', '/', '\n', 'é', '😀', '{', '}', '[', ']', ',', ':', '\u0000', '\u2028'];
    const word = () => Array.from({ length: Math.floor(rand() * 4) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
    const value = (depth: number): unknown => {
      const r = rand();
      if (depth > 3 || r < 0.3) return [word(), 1.5, null, true][Math.floor(rand() * 4)];
      if (r < 0.6) return Array.from({ length: Math.floor(rand() * 4) }, () => value(depth + 1));
      const obj: Record<string, unknown> = {};
      for (let i = Math.floor(rand() * 5); i > 0; i -= 1) obj[word()] = value(depth + 1);
      return obj;
    };
    for (let i = 0; i < 500; i += 1) {
      const text = JSON.stringify(value(0));
      expect([text, findDuplicateKey(text)]).toEqual([text, undefined]);
    }
  });

  it('finds a duplicate appended to any generated object', () => {
    let seed = 999;
    const rand = () => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff;
    const alphabet = ['k', '"', '\\', 'é', '😀', '}', ','];
    for (let i = 0; i < 200; i += 1) {
      const key = Array.from({ length: 1 + Math.floor(rand() * 4) }, () => alphabet[Math.floor(rand() * alphabet.length)]).join('');
      const inner = JSON.stringify({ [key]: { nested: [key, { [key]: key }] } });
      // the same key again in the same object, spelled with \u escapes for every character
      const escaped = `"${Array.from({ length: key.length }, (_, j) => `\\u${key.charCodeAt(j).toString(16).padStart(4, '0')}`).join('')}"`;
      const text = `${inner.slice(0, -1)},${escaped}:0}`;
      expect(dup(text)).toBe(key);
    }
  });

  it('scans a 1 MB body quickly (time printed, bound generous)', () => {
    const items: string[] = [];
    let size = 2;
    for (let i = 0; size < 1_000_000; i += 1) {
      const item = JSON.stringify({ id: i, name: `item-${i}`, tags: ['a', 'b'], nested: { key: `k${i}`, text: 'x"y\\z' } });
      items.push(item);
      size += item.length + 1;
    }
    const flat = `[${items.join(',')}]`;
    const manyKeys = `{${Array.from({ length: 40_000 }, (_, i) => `"key_${i}_\\u0041":${i}`).join(',')}}`;
    const withDup = `${flat.slice(0, -1)},{"a":1,"a":2}]`;
    for (const [label, text, expected] of [
      ['1 MB array of objects', flat, undefined],
      ['one object, 40k escaped keys', manyKeys, undefined],
      ['duplicate at the very end', withDup, 'a'],
    ] as const) {
      JSON.parse(text);
      // best of three, so a busy machine does not decide the outcome
      const times: number[] = [];
      let found: string | undefined;
      for (let run = 0; run < 3; run += 1) {
        const start = process.hrtime.bigint();
        found = findDuplicateKey(text);
        times.push(Number(process.hrtime.bigint() - start) / 1e6);
      }
      const ms = Math.min(...times);
      process.stderr.write(`findDuplicateKey: ${label} (${(text.length / 1e6).toFixed(2)} MB): ${times.map((t) => t.toFixed(1)).join(' / ')} ms\n`);
      expect(found).toBe(expected);
      expect(ms).toBeLessThan(1000);
    }
  });
});
