import { describe, expect, it } from '@jest/globals';
import { splitCommandLine } from '../../../src/commands/argv.js';

describe('splitCommandLine', () => {
  it.each<[string, string[]]>([
    ['npx -y foo', ['npx', '-y', 'foo']],
    ['  npx   -y\tfoo  ', ['npx', '-y', 'foo']],
    ['npx -y "@scope/pkg@1.0" --flag=\'a b\'', ['npx', '-y', '@scope/pkg@1.0', '--flag=a b']],
    ["'a b' c", ['a b', 'c']],
    ['"a b" c', ['a b', 'c']],
    // Adjacent quoted and unquoted parts join into one word.
    ['a"b c"\'d e\'f', ['ab cd ef']],
    ['--opt="x y"z', ['--opt=x yz']],
    // Empty quotes are an empty word, and join with neighbours to nothing.
    ["cmd '' x", ['cmd', '', 'x']],
    ['cmd "" x', ['cmd', '', 'x']],
    ['cmd a""b', ['cmd', 'ab']],
  ])('splits %j', (line, expected) => {
    expect(splitCommandLine(line)).toEqual(expected);
  });

  describe('single quotes keep everything literal', () => {
    it('keeps backslashes and double quotes', () => {
      expect(splitCommandLine(String.raw`echo 'a\b "c" \'`)).toEqual(['echo', 'a\\b "c" \\']);
    });
    it('keeps $, globs and ~', () => {
      expect(splitCommandLine("x '$HOME *.js ~'")).toEqual(['x', '$HOME *.js ~']);
    });
  });

  describe('double quotes', () => {
    it('unescape \\" and \\\\', () => {
      expect(splitCommandLine(String.raw`x "a\"b\\c"`)).toEqual(['x', String.raw`a"b\c`]);
    });
    it('keep other backslashes literally', () => {
      expect(splitCommandLine(String.raw`x "a\nb\$c"`)).toEqual(['x', String.raw`a\nb\$c`]);
    });
    it('keep single quotes literally', () => {
      expect(splitCommandLine(`x "it's"`)).toEqual(['x', "it's"]);
    });
  });

  describe('backslash outside quotes', () => {
    it('escapes a space', () => {
      expect(splitCommandLine(String.raw`a\ b c`)).toEqual(['a b', 'c']);
    });
    it('escapes quotes and backslashes', () => {
      expect(splitCommandLine(String.raw`\"a\' \\`)).toEqual([`"a'`, '\\']);
    });
    it('escapes an ordinary character to itself', () => {
      expect(splitCommandLine(String.raw`\a\b`)).toEqual(['ab']);
    });
  });

  describe('nothing is expanded and operators are plain characters', () => {
    it.each<[string, string[]]>([
      ['echo $HOME ${PATH} $(id) `id`', ['echo', '$HOME', '${PATH}', '$(id)', '`id`']],
      ['ls *.js ~ ~/x ?', ['ls', '*.js', '~', '~/x', '?']],
      ['a;b | c && d || e > f < g & h', ['a;b', '|', 'c', '&&', 'd', '||', 'e', '>', 'f', '<', 'g', '&', 'h']],
      ['cmd;rm -rf /', ['cmd;rm', '-rf', '/']],
      ['a#b # c', ['a#b', '#', 'c']],
    ])('%j', (line, expected) => {
      expect(splitCommandLine(line)).toEqual(expected);
    });
  });

  describe('errors', () => {
    it.each<[string, RegExp]>([
      ["npx 'foo", /unterminated single quote/],
      ['npx "foo', /unterminated double quote/],
      [String.raw`npx "foo\"`, /unterminated double quote/],
      ['npx foo\\', /lone backslash/],
      ['', /empty/],
      ['   \t ', /empty/],
    ])('%j throws TypeError', (line, message) => {
      expect(() => splitCommandLine(line)).toThrow(TypeError);
      expect(() => splitCommandLine(line)).toThrow(message);
    });

    it('an escaped backslash at the end is not a lone backslash', () => {
      expect(splitCommandLine('a\\\\')).toEqual(['a\\']);
    });
  });
});
