import { describe, expect, it } from '@jest/globals';
import { CommandRegistry, decodeCommandSegment } from '../../../src/commands/registry.js';
import type { CommandSpec } from '../../../src/commands/types.js';
import { UnknownCommandError } from '../../../src/errors.js';

function spec(key: string): CommandSpec {
  return { key, command: 'node', args: [key], cwd: '/srv', env: {}, allowedEnv: undefined, description: undefined };
}

const KEYS = ['npx -y foo', 'foo bar', 'uvx mcp-server-fetch', 'a%20b'];
const registry = new CommandRegistry(KEYS.map(spec));

describe('CommandRegistry', () => {
  it('resolves exact keys to their spec', () => {
    for (const key of KEYS) {
      expect(registry.resolve(key).key).toBe(key);
      expect(registry.get(key)?.args).toEqual([key]);
    }
  });

  it('reports size and keys in order', () => {
    expect(registry.size).toBe(4);
    expect(registry.keys()).toEqual(KEYS);
  });

  it('keys() returns a copy', () => {
    registry.keys().push('injected');
    expect(registry.keys()).toEqual(KEYS);
  });

  it.each([
    ['trailing space', 'npx -y foo '],
    ['leading space', ' npx -y foo'],
    ['double space', 'npx  -y foo'],
    ['tab instead of space', 'npx\t-y foo'],
    ['case change', 'NPX -y foo'],
    ['still encoded (double-encoded on the wire)', 'foo%20bar'],
    ['encoded once more', 'a%2520b'],
    ['decoded once more', 'a b'],
    ['dot segments', '../npx -y foo'],
    ['dot segments inside', 'npx -y ../foo'],
    ['NUL appended', 'npx -y foo\0'],
    ['NUL inside', 'npx\0-y foo'],
    ['prefix only', 'npx -y'],
    ['extra argument', 'npx -y foo --evil'],
    ['empty', ''],
    ['unicode look-alike', 'npx -y fοo'],
    ['prototype name', '__proto__'],
    ['Object method', 'toString'],
  ])('does not match with %s', (_label, key) => {
    expect(registry.get(key)).toBeUndefined();
    expect(() => registry.resolve(key)).toThrow(UnknownCommandError);
  });

  it('throws UnknownCommandError with the unknown_command code and no echo of the key', () => {
    const key = 'secret-marker-7f3a';
    let caught: unknown;
    try {
      registry.resolve(key);
    } catch (error) {
      caught = error;
    }
    expect(caught).toBeInstanceOf(UnknownCommandError);
    expect((caught as UnknownCommandError).code).toBe('unknown_command');
    expect((caught as UnknownCommandError).status).toBe(404);
    expect((caught as Error).message).not.toContain(key);
  });

  it('rejects duplicate keys', () => {
    expect(() => new CommandRegistry([spec('a'), spec('b'), spec('a')])).toThrow(TypeError);
    expect(() => new CommandRegistry([spec('a'), spec('a')])).toThrow('duplicate command key "a"');
  });

  it('an empty registry resolves nothing', () => {
    const empty = new CommandRegistry([]);
    expect(empty.size).toBe(0);
    expect(() => empty.resolve('x')).toThrow(UnknownCommandError);
  });
});

describe('decodeCommandSegment', () => {
  it('decodes exactly once', () => {
    expect(decodeCommandSegment('npx%20-y%20foo')).toBe('npx -y foo');
    expect(decodeCommandSegment('foo%2520bar')).toBe('foo%20bar');
    expect(decodeCommandSegment('%40scope%2Fpkg')).toBe('@scope/pkg');
    expect(decodeCommandSegment('plain')).toBe('plain');
    expect(decodeCommandSegment('%E2%82%AC')).toBe('€');
  });

  it('keeps + as + (path segments are not form-encoded)', () => {
    expect(decodeCommandSegment('a+b')).toBe('a+b');
  });

  it('decodes NUL, which then matches no key', () => {
    const key = decodeCommandSegment('npx%20-y%20foo%00');
    expect(key).toBe('npx -y foo\0');
    expect(registry.get(key as string)).toBeUndefined();
  });

  it('a double-encoded key decodes to a string that does not match', () => {
    const key = decodeCommandSegment(encodeURIComponent(encodeURIComponent('foo bar')));
    expect(key).toBe('foo%20bar');
    expect(registry.get(key as string)).toBeUndefined();
    expect(registry.get(decodeCommandSegment(encodeURIComponent('foo bar')) as string)?.key).toBe('foo bar');
  });

  it.each([['%'], ['%2'], ['%zz'], ['abc%'], ['%E2%82'], ['%C0%AF'], ['%ED%A0%80'], ['%FF'], ['a%%20']])('returns undefined for malformed %j', (raw) => {
    expect(decodeCommandSegment(raw)).toBeUndefined();
  });
});

describe('CommandRegistry.replace', () => {
  it('swaps the whole table; a removed key is retired, a re-added one is not', () => {
    const live = new CommandRegistry([spec('a'), spec('b')]);
    const b = live.get('b')!;
    live.replace([spec('c'), spec('a')]);
    expect(live.keys()).toEqual(['c', 'a']);
    expect(live.get('b')).toBeUndefined();
    expect(live.retired('b')).toBe(b);
    expect(live.retired('a')).toBeUndefined();
    live.replace([spec('b')]);
    expect(live.retired('b')).toBeUndefined();
    expect(live.retired('a')?.key).toBe('a');
  });

  it('changes nothing when the new table has a duplicate key', () => {
    const live = new CommandRegistry([spec('a')]);
    expect(() => live.replace([spec('x'), spec('x')])).toThrow('duplicate command key "x"');
    expect(live.keys()).toEqual(['a']);
    expect(live.retired('a')).toBeUndefined();
  });
});
