import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CommandsFileError, commandEntrySchema, loadCommandsFile, parseCommands } from '../../../src/config/commands.js';

let dir: string;
let counter = 0;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'warden-commands-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Writes `content` (a string is written verbatim) to a new file and returns its path. */
async function writeCommands(content: unknown): Promise<string> {
  counter += 1;
  const path = join(dir, `allowed-commands-${counter}.json`);
  await writeFile(path, typeof content === 'string' ? content : JSON.stringify(content), 'utf8');
  return path;
}

async function loadError(content: unknown): Promise<CommandsFileError> {
  const path = await writeCommands(content);
  const error = await loadCommandsFile(path).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(CommandsFileError);
  return error as CommandsFileError;
}

function parseError(json: unknown): CommandsFileError {
  try {
    parseCommands(json, '/base');
  } catch (error) {
    expect(error).toBeInstanceOf(CommandsFileError);
    return error as CommandsFileError;
  }
  throw new Error('expected parseCommands to throw');
}

describe('loadCommandsFile', () => {
  it('loads a good file with both shapes', async () => {
    const path = await writeCommands({
      'npx -y @modelcontextprotocol/server-everything': 'npx -y @modelcontextprotocol/server-everything',
      'uvx "mcp-server-fetch" --flag=\'a b\'': {
        args: ['--extra'],
        env: { FETCH_MODE: 'fast', lower_ok: 'x' },
        allowedEnv: ['API_KEY', 'FETCH_*'],
        cwd: 'servers/fetch',
        description: 'fetch server',
      },
      everything: { command: 'node', args: ['server.js', 'a b'], cwd: '/srv/abs' },
    });

    const specs = await loadCommandsFile(path);
    expect(specs).toHaveLength(3);

    expect(specs[0]).toEqual({
      key: 'npx -y @modelcontextprotocol/server-everything',
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-everything'],
      cwd: dir,
      env: {},
      allowedEnv: undefined,
      description: undefined,
    });
    expect(specs[1]).toEqual({
      key: 'uvx "mcp-server-fetch" --flag=\'a b\'',
      command: 'uvx',
      args: ['mcp-server-fetch', '--flag=a b', '--extra'],
      cwd: join(dir, 'servers/fetch'),
      env: { FETCH_MODE: 'fast', lower_ok: 'x' },
      allowedEnv: ['API_KEY', 'FETCH_*'],
      description: 'fetch server',
      pool: { min: 0 },
    });
    // With `command`, the key is only a name and `args` is used as-is.
    expect(specs[2]).toMatchObject({ key: 'everything', command: 'node', args: ['server.js', 'a b'], cwd: '/srv/abs' });
  });

  it('an empty object entry behaves like the string shape', async () => {
    const specs = await loadCommandsFile(await writeCommands({ 'node x.js': {} }));
    expect(specs[0]).toMatchObject({ command: 'node', args: ['x.js'], cwd: dir });
  });

  it('resolves a relative cwd against the file folder, including ..', async () => {
    const specs = await loadCommandsFile(await writeCommands({ a: { command: 'a', cwd: '../up' }, b: { command: 'b', cwd: '.' } }));
    expect(specs[0]?.cwd).toBe(join(dir, '..', 'up'));
    expect(specs[1]?.cwd).toBe(dir);
  });

  it('rejects a string value that differs from its key, naming the file and key', async () => {
    const error = await loadError({ 'npx -y foo': 'npx -y bar' });
    expect(error.key).toBe('npx -y foo');
    expect(error.file).toMatch(/allowed-commands-\d+\.json$/);
    expect(error.message).toMatch(/allowed-commands-\d+\.json: entry "npx -y foo": .*identical to its key/);
  });

  it('rejects an unknown field, naming the key and the field', async () => {
    const error = await loadError({ 'npx -y foo': { allowEnv: ['API_KEY'] } });
    expect(error.key).toBe('npx -y foo');
    expect(error.message).toContain('entry "npx -y foo"');
    expect(error.message).toContain('unknown field "allowEnv"');
  });

  it('rejects a bad allowedEnv entry with its index', async () => {
    const error = await loadError({ 'npx -y foo': { allowedEnv: ['API_KEY', 'api_key'] } });
    expect(error.message).toMatch(/: entry "npx -y foo": allowedEnv\[1\] must be an upper-case variable name/);
  });

  it.each([['A*B'], ['1ABC'], ['A-B'], ['*'], ['']])('rejects allowedEnv entry %j', (entry) => {
    expect(parseError({ x: { allowedEnv: [entry] } }).message).toContain('allowedEnv[0] must be an upper-case variable name');
  });

  it('rejects an allowedEnv entry naming a variable of the wall, naming the file, key and variable', async () => {
    const error = await loadError({ 'npx -y foo': { allowedEnv: ['API_KEY', 'NODE_OPTIONS'] } });
    expect(error.key).toBe('npx -y foo');
    expect(error.message).toMatch(
      /allowed-commands-\d+\.json: entry "npx -y foo": allowedEnv\[1\] "NODE_OPTIONS" names a variable no client may ever set \(family interpreter: it passes options/,
    );
    expect(error.message).toContain('set a fixed value in "env" instead');
  });

  it.each([
    'LD_PRELOAD',
    'PATH',
    'GIT_SSH_COMMAND',
    'GIT_CONFIG_GLOBAL',
    'PAGER',
    'BASH_ENV',
    'RUSTC_WRAPPER',
    'GOFLAGS',
    'NPM_CONFIG_REGISTRY',
    'NODE_*',
    'LD_*',
    'PYTHON*',
  ])('refuses to load allowedEnv [%j]', (entry) => {
    const error = parseError({ x: { allowedEnv: [entry] } });
    expect(error.key).toBe('x');
    expect(error.message).toContain(`entry "x": allowedEnv[0] ${JSON.stringify(entry)} names a variable no client may ever set`);
  });

  it('loads allowedEnv entries that open blocklisted names, exact or by prefix', () => {
    const [spec] = parseCommands({ x: { allowedEnv: ['TZ', 'LANG', 'GIT_AUTHOR_NAME', 'AWS_REGION', 'DOCKER_HOST', 'GIT_*', 'MY_*'] } }, '/base');
    expect(spec?.allowedEnv).toEqual(['TZ', 'LANG', 'GIT_AUTHOR_NAME', 'AWS_REGION', 'DOCKER_HOST', 'GIT_*', 'MY_*']);
  });

  it('the fixed env may still set a variable of the wall (the admin is trusted)', () => {
    const [spec] = parseCommands({ x: { env: { PYTHONPATH: '/srv/lib', NODE_OPTIONS: '--max-old-space-size=512' } } }, '/base');
    expect(spec?.env).toEqual({ PYTHONPATH: '/srv/lib', NODE_OPTIONS: '--max-old-space-size=512' });
  });

  it('rejects a non-array allowedEnv', () => {
    expect(parseError({ x: { allowedEnv: 'API_KEY' } }).message).toContain('allowedEnv must be an array of strings');
  });

  it('rejects a bad env name, naming it', async () => {
    const error = await loadError({ 'npx -y foo': { env: { 'BAD-NAME': 'x' } } });
    expect(error.message).toContain('entry "npx -y foo"');
    expect(error.message).toContain('env name "BAD-NAME" must be a variable name');
  });

  it('rejects __proto__ as an env name instead of dropping it', () => {
    const json = JSON.parse('{"x": {"env": {"__proto__": "v"}}}') as unknown;
    expect(parseError(json).message).toContain('env name "__proto__" is reserved');
  });

  it('rejects an env value with NUL and a non-string env value', () => {
    expect(parseError({ x: { env: { A: 'a\0b' } } }).message).toContain('env.A must not contain a NUL character');
    expect(parseError({ x: { env: { A: 1 } } }).message).toContain('env.A must be a string');
  });

  it.each<[unknown, RegExp]>([
    [{ command: '' }, /command must not be empty/],
    [{ command: 5 }, /command must be a string/],
    [{ args: 'a b' }, /args must be an array of strings/],
    [{ args: ['ok', 3] }, /args\[1\] must be a string/],
    [{ cwd: 'a\0b' }, /cwd must not contain a NUL character/],
    [{ description: 1 }, /description must be a string/],
  ])('rejects entry %j', (entry, message) => {
    const error = parseError({ 'node x': entry });
    expect(error.key).toBe('node x');
    expect(error.message).toMatch(message);
  });

  it.each<[unknown]>([[42], [null], [['node x']], [true]])('rejects a value of the wrong type: %j', (value) => {
    expect(parseError({ 'node x': value }).message).toContain('entry "node x": value must be an object or a string identical to the key');
  });

  it('reports invalid JSON with the file path', async () => {
    const error = await loadError('{"npx -y foo": ');
    expect(error.message).toMatch(/^.*allowed-commands-\d+\.json: invalid JSON: /);
    expect(error.key).toBeUndefined();
  });

  it('reports a missing file with its path', async () => {
    const path = join(dir, 'does-not-exist.json');
    await expect(loadCommandsFile(path)).rejects.toThrow(`${path}: cannot read file`);
  });

  it.each<[string, RegExp]>([
    ['{}', /no commands defined/],
    ['[]', /top level must be a JSON object.*array/],
    ['null', /top level must be a JSON object.*null/],
    ['"npx foo"', /top level must be a JSON object.*string/],
  ])('rejects top level %s, naming the file', async (content, message) => {
    const error = await loadError(content);
    expect(error.message).toMatch(message);
    expect(error.message).toMatch(/allowed-commands-\d+\.json: /);
  });
});

describe('parseCommands', () => {
  it('defaults cwd to the absolute baseDir', () => {
    const [spec] = parseCommands({ 'node a.js': 'node a.js' }, 'relative/dir');
    expect(spec?.cwd).toBe(join(process.cwd(), 'relative/dir'));
  });

  it('appends args to the key words when command is absent', () => {
    const [spec] = parseCommands({ 'npx -y pkg': { args: ['--port', '1'] } }, '/b');
    expect(spec).toMatchObject({ command: 'npx', args: ['-y', 'pkg', '--port', '1'] });
  });

  it('keeps operators in the key as literal argv words', () => {
    const [spec] = parseCommands({ 'echo a;id | cat': 'echo a;id | cat' }, '/b');
    expect(spec).toMatchObject({ command: 'echo', args: ['a;id', '|', 'cat'] });
  });

  it('does not split the key when command is given (quotes need not balance)', () => {
    const [spec] = parseCommands({ "it's a name": { command: 'node' } }, '/b');
    expect(spec).toMatchObject({ key: "it's a name", command: 'node', args: [] });
  });

  it('rejects a key that is not a valid command line', () => {
    const error = parseError({ "npx 'foo": "npx 'foo" });
    expect(error.key).toBe("npx 'foo");
    expect(error.message).toContain('not a valid command line');
    expect(error.message).toContain('unterminated single quote');
  });

  it('rejects a key whose first word is empty', () => {
    expect(parseError({ "'' foo": "'' foo" }).message).toContain('command (first word of the key) is empty');
  });

  it.each<[string, RegExp]>([
    [' npx foo', /whitespace/],
    ['npx foo ', /whitespace/],
    ['npx\tfoo\n', /whitespace/],
    ['npx\0foo', /control characters/],
    ['npx\u0007foo', /control characters/],
    ['npx\u009bfoo', /control characters/],
    ['npx \ud800', /well-formed/],
    ['x'.repeat(1025), /longer than 1024/],
  ])('rejects bad key %j', (key, message) => {
    const error = parseError({ [key]: { command: 'x' } });
    expect(error.key).toBe(key);
    expect(error.message).toMatch(message);
  });

  it('rejects an empty key', () => {
    expect(parseError({ '': { command: 'x' } }).message).toContain('key must not be empty');
  });

  it('accepts a key of exactly 1024 characters', () => {
    const key = 'x'.repeat(1024);
    expect(parseCommands({ [key]: key }, '/b')[0]?.command).toBe(key);
  });

  it('messages without a file start with the entry and escape the key', () => {
    const error = parseError({ 'a"b': 'other' });
    expect(error.message.startsWith('entry "a\\"b": ')).toBe(true);
  });

  it('reports every problem of one entry', () => {
    const message = parseError({ x: { cwd: 1, extra: true } }).message;
    expect(message).toContain('cwd must be a string');
    expect(message).toContain('unknown field "extra"');
  });

  it('returns frozen args and env', () => {
    const [spec] = parseCommands({ x: { command: 'x', args: ['a'], env: { A: 'b' } } }, '/b');
    expect(Object.isFrozen(spec?.args)).toBe(true);
    expect(Object.isFrozen(spec?.env)).toBe(true);
  });
});

describe('commandEntrySchema', () => {
  it('is strict and can be extended with new fields', () => {
    expect(commandEntrySchema.safeParse({ pool: 2 }).success).toBe(false);
    const extended = commandEntrySchema.extend({ pool: commandEntrySchema.shape.description });
    expect(extended.safeParse({ pool: 'x' }).success).toBe(true);
    expect(extended.safeParse({ poool: 'x' }).success).toBe(false);
  });
});

describe('$schema and idle', () => {
  it('a top-level "$schema" string is not an entry', () => {
    const specs = parseCommands({ $schema: './schema/allowed-commands.schema.json', x: {} }, '/b');
    expect(specs.map((s) => s.key)).toEqual(['x']);
  });

  it('refuses a "$schema" that is not a string, and a file of "$schema" only', () => {
    expect(parseError({ $schema: { command: 'x' }, x: {} }).message).toContain('"$schema" must be a string');
    expect(parseError({ $schema: './s.json' }).message).toContain('no commands defined');
  });

  it('stores "idle" ("keep" or "hibernate") on the spec, refuses any other value', () => {
    expect(parseCommands({ x: { idle: 'hibernate' } }, '/b')[0]?.idle).toBe('hibernate');
    expect(parseCommands({ x: { idle: 'keep' } }, '/b')[0]?.idle).toBe('keep');
    expect(parseCommands({ x: {} }, '/b')[0]?.idle).toBeUndefined();
    expect(parseError({ x: { idle: 'sleep' } }).message).toBe('entry "x": idle must be "keep" or "hibernate"');
  });
});
