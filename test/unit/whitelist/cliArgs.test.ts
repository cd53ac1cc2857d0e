/** The grammar of `mcp-warden commands`, and the entry `add` builds from it. */
import { describe, expect, it } from '@jest/globals';
import { CliUsageError, entryFromArgs, parseCliArgs } from '../../../src/whitelist/cliArgs.js';

const ADD = {
  file: 'one',
  remote: 'one',
  help: 'flag',
  command: 'one',
  args: 'many',
  'allow-env': 'many',
  env: 'many',
  mode: 'one',
  idle: 'one',
  description: 'one',
  replace: 'flag',
} as const;

describe('parseCliArgs', () => {
  it('reads one-value, many-value and flag options, positionals, and the words after --', () => {
    const parsed = parseCliArgs(['github', '--allow-env', 'A', 'B', '--replace', '--file=f.json', '--', 'npx', '-y', '--flag'], ADD);
    expect(parsed.positionals).toEqual(['github']);
    expect(parsed.many.get('allow-env')).toEqual(['A', 'B']);
    expect(parsed.one.get('file')).toBe('f.json');
    expect(parsed.flags.has('replace')).toBe(true);
    expect(parsed.rest).toEqual(['npx', '-y', '--flag']);
  });

  it('refuses a token on the command line, unknown options and missing values', () => {
    expect(() => parseCliArgs(['--token', 'x'], ADD)).toThrow('the admin token is read from WARDEN_ADMIN_TOKEN in the environment');
    expect(() => parseCliArgs(['--admin-token=x'], ADD)).toThrow(CliUsageError);
    expect(() => parseCliArgs(['--nope'], ADD)).toThrow('unknown option --nope');
    expect(() => parseCliArgs(['--file'], ADD)).toThrow('--file needs a value');
    expect(() => parseCliArgs(['--env', '--replace'], ADD)).toThrow('--env needs at least one value');
    expect(() => parseCliArgs(['--file', 'a', '--file', 'b'], ADD)).toThrow('--file is given twice');
  });
});

describe('entryFromArgs', () => {
  it('builds the entry from a command line after --', () => {
    const parsed = parseCliArgs(
      [
        'gh',
        '--description',
        'GitHub',
        '--allow-env',
        'GITHUB_TOKEN,GH_HOST',
        '--mode',
        'shared',
        '--idle',
        'hibernate',
        '--',
        'npx',
        '-y',
        '@modelcontextprotocol/server-github',
      ],
      ADD,
    );
    expect(entryFromArgs(parsed, {})).toEqual({
      description: 'GitHub',
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-github'],
      allowedEnv: ['GITHUB_TOKEN', 'GH_HOST'],
      mode: 'shared',
      idle: 'hibernate',
    });
  });

  it('builds it from --command/--args; without either the key is the command line', () => {
    expect(entryFromArgs(parseCliArgs(['x', '--command', 'node', '--args', 'a.js', '-v'], ADD), {})).toEqual({ command: 'node', args: ['a.js', '-v'] });
    expect(entryFromArgs(parseCliArgs(['npx -y pkg'], ADD), {})).toEqual({});
  });

  it('takes fixed env values as NAME=VALUE, or a bare NAME from this environment', () => {
    const parsed = parseCliArgs(['x', '--env', 'A=1=2', 'TOKEN', '--', 'node'], ADD);
    expect(entryFromArgs(parsed, { TOKEN: 't0k' })).toMatchObject({ env: { A: '1=2', TOKEN: 't0k' } });
    expect(() => entryFromArgs(parsed, {})).toThrow('--env TOKEN: no value given (NAME=VALUE) and TOKEN is not set in this environment');
  });

  it('refuses both forms at once, and an empty command line', () => {
    expect(() => entryFromArgs(parseCliArgs(['x', '--command', 'node', '--', 'npx'], ADD), {})).toThrow('not both');
    expect(() => entryFromArgs(parseCliArgs(['x', '--'], ADD), {})).toThrow('nothing follows --');
  });
});
