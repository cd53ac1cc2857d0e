import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import {
  EMPTY_ENV_FINGERPRINT,
  ENV_BLOCKLIST,
  buildChildEnv,
  defaultChildEnvBase,
  envFingerprint,
  extractEnvHeaders,
  isBlockedEnvName,
  validateEnvHeaders,
  type EnvHeaderEntry,
} from '../../../src/commands/env.js';
import type { CommandSpec } from '../../../src/commands/types.js';
import { EnvRejectedError } from '../../../src/errors.js';

function spec(overrides: Partial<CommandSpec> = {}): CommandSpec {
  return {
    key: 'npx -y foo',
    command: 'npx',
    args: ['-y', 'foo'],
    cwd: '/srv',
    env: {},
    allowedEnv: undefined,
    description: undefined,
    ...overrides,
  };
}

const anyName = spec();

function rejection(entries: EnvHeaderEntry[], s: CommandSpec = anyName, limits = {}): EnvRejectedError {
  try {
    validateEnvHeaders(entries, s, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(EnvRejectedError);
    return error as EnvRejectedError;
  }
  throw new Error('expected validateEnvHeaders to throw');
}

function expectRejected(entries: EnvHeaderEntry[], name: string, reason: string, s: CommandSpec = anyName, limits = {}): EnvRejectedError {
  const error = rejection(entries, s, limits);
  expect(error.data).toEqual({ variable: name, reason });
  expect(error.code).toBe('env_rejected');
  expect(error.status).toBe(400);
  expect(error.message).toContain(name);
  return error;
}

describe('extractEnvHeaders', () => {
  it('picks env_* headers, upper-casing the rest of the name', () => {
    const entries = extractEnvHeaders({
      'env_api_key': 'k1',
      'ENV_Mixed_Case': 'k2',
      'Env_x': 'k3',
      'content-type': 'application/json',
      'environment': 'nope',
      'x-env_foo': 'nope',
      'envfoo': 'nope',
    });
    expect(entries).toEqual([
      { name: 'API_KEY', value: 'k1' },
      { name: 'MIXED_CASE', value: 'k2' },
      { name: 'X', value: 'k3' },
    ]);
  });

  it('turns an array (repeated header) into one entry per value, so validation sees a duplicate', () => {
    const entries = extractEnvHeaders({ env_token: ['a', 'b'] });
    expect(entries).toEqual([
      { name: 'TOKEN', value: 'a' },
      { name: 'TOKEN', value: 'b' },
    ]);
    expectRejected(entries, 'TOKEN', 'duplicate');
  });

  it('skips undefined values and keeps empty names for validation to reject', () => {
    const entries = extractEnvHeaders({ env_a: undefined, env_: 'x' });
    expect(entries).toEqual([{ name: '', value: 'x' }]);
    expectRejected(entries, '', 'invalid name');
  });
});

describe('ENV_BLOCKLIST / isBlockedEnvName', () => {
  // One line per group the gateway must block; each is checked in upper, lower and mixed case.
  const required: Array<[string, string[]]> = [
    ['dynamic loader', ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'DYLD_INSERT_LIBRARIES', 'DYLD_LIBRARY_PATH']],
    ['glibc', ['GCONV_PATH', 'LOCPATH', 'MALLOC_CHECK_', 'MALLOC_ARENA_MAX', 'GLIBC_TUNABLES', 'HOSTALIASES', 'RES_OPTIONS', 'LOCALDOMAIN']],
    ['gateway-set', ['PATH', 'HOME', 'TMPDIR']],
    ['node and npm', ['NODE_OPTIONS', 'NODE_PATH', 'NODE_TLS_REJECT_UNAUTHORIZED', 'NPM_CONFIG_REGISTRY', 'NPM_CONFIG_SCRIPT_SHELL']],
    ['shell', ['BASH_ENV', 'ENV', 'BASH_FUNC_X', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'PROMPT_COMMAND', 'IFS', 'CDPATH', 'GLOBIGNORE', 'ZDOTDIR', 'SHELL']],
    ['python', ['PYTHONPATH', 'PYTHONSTARTUP', 'PYTHONHOME', 'PYTHONWARNINGS', 'PYTHONINSPECT']],
    ['perl', ['PERL5LIB', 'PERL5OPT', 'PERLLIB']],
    ['ruby', ['RUBYOPT', 'RUBYLIB', 'GEM_HOME', 'GEM_PATH', 'BUNDLE_GEMFILE']],
    ['jvm', ['JAVA_TOOL_OPTIONS', '_JAVA_OPTIONS', 'JDK_JAVA_OPTIONS', 'JAVA_OPTS', 'CLASSPATH']],
    ['proxy', ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'NO_PROXY', 'FTP_PROXY']],
    ['git and ssh', ['GIT_SSH_COMMAND', 'GIT_CONFIG_GLOBAL', 'GIT_DIR', 'SSH_AUTH_SOCK', 'SSH_ASKPASS']],
    ['tls', ['SSL_CERT_FILE', 'SSL_CERT_DIR', 'REQUESTS_CA_BUNDLE', 'CURL_CA_BUNDLE', 'NODE_EXTRA_CA_CERTS', 'OPENSSL_CONF']],
    ['platform and gateway', ['FLY_API_TOKEN', 'AWS_SECRET_ACCESS_KEY', 'AWS_PROFILE', 'WARDEN_TOKEN']],
    ['other runtimes', ['ELECTRON_RUN_AS_NODE', 'DENO_DIR', 'BUN_INSTALL']],
  ];

  describe.each(required)('%s', (_group, names) => {
    it.each(names)('blocks %s in any case', (name) => {
      expect(isBlockedEnvName(name)).toBe(true);
      expect(isBlockedEnvName(name.toLowerCase())).toBe(true);
      const mixed = name.charAt(0).toLowerCase() + name.slice(1);
      expect(isBlockedEnvName(mixed)).toBe(true);
      // And the same through validation, as a header would arrive.
      expectRejected([{ name: name.toLowerCase(), value: 'v' }], name, 'blocked');
    });
  });

  it.each([['ld_preload', 'LD_PRELOAD'], ['http_proxy', 'HTTP_PROXY'], ['Path', 'PATH'], ['node_options', 'NODE_OPTIONS'], ['https_proxy', 'HTTPS_PROXY']])(
    'rejects the lower/mixed-case header name %s as %s',
    (raw, upper) => {
      const entries = extractEnvHeaders({ [`env_${raw.toLowerCase()}`]: 'v' });
      expect(entries[0]?.name).toBe(upper);
      expectRejected([{ name: raw, value: 'v' }], upper, 'blocked');
    },
  );

  it('every entry is upper-case, and each exact name and prefix is blocked', () => {
    for (const entry of ENV_BLOCKLIST) {
      expect(entry).toMatch(/^[A-Z_][A-Z0-9_]*\*?$/);
      const sample = entry.endsWith('*') ? `${entry.slice(0, -1)}SAMPLE` : entry;
      expect(isBlockedEnvName(sample)).toBe(true);
    }
  });

  it.each(['API_KEY', 'GITHUB_TOKEN', 'OPENAI_API_KEY', 'LANG', 'LC_ALL', 'LC_CTYPE', 'TZ', 'DEBUG', 'PATHX', 'HOMEPAGE', 'MY_PATH', 'XLD_PRELOAD', 'ENVIRONMENT', 'SHELL_COLOR', 'NODEJS', 'GITHUB_PERSONAL_ACCESS_TOKEN'])(
    'does not block %s',
    (name) => {
      expect(isBlockedEnvName(name)).toBe(false);
      expect(validateEnvHeaders([{ name, value: 'v' }], anyName)).toEqual({ [name]: 'v' });
    },
  );

  it('is frozen', () => {
    expect(Object.isFrozen(ENV_BLOCKLIST)).toBe(true);
  });
});

describe('validateEnvHeaders', () => {
  it('accepts valid variables and upper-cases their names', () => {
    expect(
      validateEnvHeaders(
        [
          { name: 'api_key', value: 'abc' },
          { name: 'Region', value: 'eu west\twith tab' },
          { name: 'EMPTY', value: '' },
          { name: '_UNDERSCORE1', value: 'ünïcødé €' },
        ],
        anyName,
      ),
    ).toEqual({ API_KEY: 'abc', REGION: 'eu west\twith tab', EMPTY: '', _UNDERSCORE1: 'ünïcødé €' });
  });

  it('accepts no variables', () => {
    expect(validateEnvHeaders([], anyName)).toEqual({});
  });

  describe('names', () => {
    it.each([['1ABC'], ['A-B'], ['A.B'], ['A B'], [''], ['Ä'], ['ſSH_AUTH_SOCK']])('rejects %j as invalid name', (name) => {
      const error = rejection([{ name, value: 'v' }]);
      expect(error.data).toMatchObject({ reason: 'invalid name' });
    });

    it('accepts a 128-character name and rejects 129', () => {
      const ok = 'A'.repeat(128);
      expect(validateEnvHeaders([{ name: ok, value: 'v' }], anyName)).toEqual({ [ok]: 'v' });
      const error = rejection([{ name: 'A'.repeat(129), value: 'v' }]);
      expect(error.data).toMatchObject({ reason: 'invalid name' });
      expect(String(error.data?.['variable']).length).toBeLessThanOrEqual(129);
    });

    it('masks unexpected characters of an invalid name in the error', () => {
      const error = rejection([{ name: 'a-b<script>', value: 'v' }]);
      expect(error.message).not.toContain('<script>');
      expect(error.data).toEqual({ variable: 'A?B?SCRIPT?', reason: 'invalid name' });
    });
  });

  describe('allowedEnv', () => {
    const restricted = spec({ allowedEnv: ['API_KEY', 'GITHUB_*'] });

    it('accepts exact names and prefixes', () => {
      expect(
        validateEnvHeaders(
          [
            { name: 'api_key', value: '1' },
            { name: 'GITHUB_TOKEN', value: '2' },
            { name: 'github_', value: '3' },
          ],
          restricted,
        ),
      ).toEqual({ API_KEY: '1', GITHUB_TOKEN: '2', GITHUB_: '3' });
    });

    it.each(['API_KEY2', 'API_KE', 'GITHUB', 'OTHER', 'XGITHUB_TOKEN'])('rejects %s', (name) => {
      expectRejected([{ name, value: 'v' }], name, 'not allowed for this command', restricted);
    });

    it('an empty list allows nothing', () => {
      expectRejected([{ name: 'API_KEY', value: 'v' }], 'API_KEY', 'not allowed for this command', spec({ allowedEnv: [] }));
    });

    it('the blocklist wins over allowedEnv', () => {
      const permissive = spec({ allowedEnv: ['PATH', 'LD_PRELOAD', 'NODE_*', 'HTTP_PROXY'] });
      expectRejected([{ name: 'PATH', value: '/tmp' }], 'PATH', 'blocked', permissive);
      expectRejected([{ name: 'ld_preload', value: '/x.so' }], 'LD_PRELOAD', 'blocked', permissive);
      expectRejected([{ name: 'NODE_OPTIONS', value: '--require x' }], 'NODE_OPTIONS', 'blocked', permissive);
      expectRejected([{ name: 'http_proxy', value: 'http://evil' }], 'HTTP_PROXY', 'blocked', permissive);
    });
  });

  describe('values', () => {
    it.each([
      ['NUL', 'a\0b'],
      ['CR', 'a\rb'],
      ['LF', 'a\nb'],
      ['CRLF', 'a\r\nX-Injected: 1'],
      ['BEL', 'a\u0007b'],
      ['ESC', '\u001b[31mred'],
      ['unit separator', 'a\u001fb'],
      ['DEL', 'a\u007fb'],
    ])('rejects a value with %s', (_label, value) => {
      expectRejected([{ name: 'API_KEY', value }], 'API_KEY', 'invalid value');
    });

    it('accepts TAB', () => {
      expect(validateEnvHeaders([{ name: 'A', value: '\t' }], anyName)).toEqual({ A: '\t' });
    });

    it('limits the value to 4096 UTF-8 bytes by default', () => {
      expect(validateEnvHeaders([{ name: 'A', value: 'x'.repeat(4096) }], anyName)).toEqual({ A: 'x'.repeat(4096) });
      expectRejected([{ name: 'A', value: 'x'.repeat(4097) }], 'A', 'value too long');
      // 2049 two-byte characters are 4098 bytes although only 2049 UTF-16 units.
      expectRejected([{ name: 'A', value: 'é'.repeat(2049) }], 'A', 'value too long');
    });

    it('honours a custom maxValueBytes', () => {
      expect(validateEnvHeaders([{ name: 'A', value: '12345' }], anyName, { maxValueBytes: 5 })).toEqual({ A: '12345' });
      expectRejected([{ name: 'A', value: '123456' }], 'A', 'value too long', anyName, { maxValueBytes: 5 });
    });
  });

  describe('duplicates and counts', () => {
    it('rejects the same name twice, in any case', () => {
      expectRejected(
        [
          { name: 'foo', value: '1' },
          { name: 'FOO', value: '2' },
        ],
        'FOO',
        'duplicate',
      );
    });

    it('rejects env_foo plus a repeated ENV_FOO header', () => {
      const entries = [...extractEnvHeaders({ env_foo: '1' }), ...extractEnvHeaders({ env_foo: ['2', '3'] })];
      expectRejected(entries, 'FOO', 'duplicate');
    });

    it('allows 64 variables by default and rejects 65 under the name *', () => {
      const make = (n: number) => Array.from({ length: n }, (_, i) => ({ name: `V${i}`, value: 'x' }));
      expect(Object.keys(validateEnvHeaders(make(64), anyName))).toHaveLength(64);
      const error = rejection(make(65));
      expect(error.data?.['variable']).toBe('*');
      expect(String(error.data?.['reason'])).toMatch(/^too many variables/);
      expect(error.message).toContain('64');
    });

    it('honours a custom maxVariables', () => {
      const entries = [
        { name: 'A', value: '1' },
        { name: 'B', value: '2' },
      ];
      expect(rejection(entries, anyName, { maxVariables: 1 }).data?.['variable']).toBe('*');
      expect(validateEnvHeaders(entries, anyName, { maxVariables: 2 })).toEqual({ A: '1', B: '2' });
    });

    it('rejects invalid limits with TypeError', () => {
      expect(() => validateEnvHeaders([], anyName, { maxVariables: -1 })).toThrow(TypeError);
      expect(() => validateEnvHeaders([], anyName, { maxValueBytes: 1.5 })).toThrow('EnvLimits.maxValueBytes');
      expect(() => validateEnvHeaders([], anyName, { maxVariables: Number.NaN })).toThrow('EnvLimits.maxVariables');
    });
  });

  describe('errors never contain the value', () => {
    const MARKER = 'SeCrEt-MaRkEr-9b1c2d';
    const cases: Array<[string, EnvHeaderEntry[], CommandSpec]> = [
      ['blocked', [{ name: 'LD_PRELOAD', value: MARKER }], anyName],
      ['not allowed', [{ name: 'OTHER', value: MARKER }], spec({ allowedEnv: ['API_KEY'] })],
      ['invalid value', [{ name: 'A', value: `${MARKER}\n` }], anyName],
      ['value too long', [{ name: 'A', value: MARKER.repeat(1000) }], anyName],
      ['duplicate', [{ name: 'A', value: MARKER }, { name: 'A', value: MARKER }], anyName],
      ['invalid name', [{ name: '1A', value: MARKER }], anyName],
      ['too many', Array.from({ length: 65 }, (_, i) => ({ name: `V${i}`, value: MARKER })), anyName],
    ];
    it.each(cases)('%s', (_label, entries, s) => {
      const error = rejection(entries, s);
      expect(error.message).not.toContain(MARKER);
      expect(JSON.stringify(error)).not.toContain(MARKER);
      expect(JSON.stringify(error.data)).not.toContain(MARKER);
      expect(String(error.stack)).not.toContain(MARKER);
    });
  });
});

describe('buildChildEnv', () => {
  const MARKER_NAME = 'WARDEN_TEST_MARKER_ENV';
  const MARKER_VALUE = 'marker-value-4e8f';
  afterEach(() => {
    delete process.env[MARKER_NAME];
  });

  const base = { path: '/opt/node/bin:/usr/bin', home: '/home/warden' };

  it('builds from scratch: nothing from process.env leaks in', () => {
    process.env[MARKER_NAME] = MARKER_VALUE;
    const env = buildChildEnv(spec(), {}, base);
    expect(env).toEqual({ PATH: '/opt/node/bin:/usr/bin', HOME: '/home/warden', LANG: 'C.UTF-8' });
    expect(env[MARKER_NAME]).toBeUndefined();
    expect(Object.values(env)).not.toContain(MARKER_VALUE);
    expect(JSON.stringify(env)).not.toContain(MARKER_VALUE);
    // Sanity: the marker really was in the gateway's env.
    expect(process.env[MARKER_NAME]).toBe(MARKER_VALUE);
  });

  it('the default base does not leak process.env either', () => {
    process.env[MARKER_NAME] = MARKER_VALUE;
    const env = buildChildEnv(spec(), { API_KEY: 'k' }, defaultChildEnvBase());
    expect(Object.keys(env).sort()).toEqual(['API_KEY', 'HOME', 'LANG', 'PATH']);
    expect(JSON.stringify(env)).not.toContain(MARKER_VALUE);
  });

  it('uses base.lang when given', () => {
    expect(buildChildEnv(spec(), {}, { ...base, lang: 'en_US.UTF-8' }).LANG).toBe('en_US.UTF-8');
  });

  it('layers base, then the spec env, then accepted headers', () => {
    const env = buildChildEnv(
      spec({ env: { PATH: '/admin/bin', FIXED: 'admin', SHARED: 'admin' } }),
      { SHARED: 'client', API_KEY: 'k' },
      base,
    );
    expect(env).toEqual({
      PATH: '/admin/bin',
      HOME: '/home/warden',
      LANG: 'C.UTF-8',
      FIXED: 'admin',
      SHARED: 'client',
      API_KEY: 'k',
    });
  });

  it('returns a new object each time', () => {
    const s = spec({ env: { A: '1' } });
    const first = buildChildEnv(s, {}, base);
    first['A'] = 'changed';
    expect(buildChildEnv(s, {}, base)['A']).toBe('1');
    expect(s.env['A']).toBe('1');
  });
});

describe('defaultChildEnvBase', () => {
  it('puts the node folder first on PATH, then the system folders', () => {
    const result = defaultChildEnvBase();
    const parts = result.path.split(':');
    expect(parts[0]).toBe(dirname(process.execPath));
    expect(parts).toEqual(expect.arrayContaining(['/usr/local/bin', '/usr/bin', '/bin']));
    expect(new Set(parts).size).toBe(parts.length);
    expect(result.home).toBe(homedir());
    expect(result.lang).toBe('C.UTF-8');
  });

  it('does not take PATH from process.env', () => {
    const saved = process.env['PATH'];
    process.env['PATH'] = '/marker/path/bin';
    try {
      expect(defaultChildEnvBase().path).not.toContain('/marker/path/bin');
    } finally {
      process.env['PATH'] = saved;
    }
  });
});

describe('envFingerprint', () => {
  it('is a sha256 hex digest', () => {
    expect(envFingerprint({ A: '1' })).toMatch(/^[0-9a-f]{64}$/);
  });

  it('is a constant for no variables', () => {
    expect(envFingerprint({})).toBe(EMPTY_ENV_FINGERPRINT);
    expect(EMPTY_ENV_FINGERPRINT).toBe(createHash('sha256').update('').digest('hex'));
  });

  it('does not depend on insertion order', () => {
    expect(envFingerprint({ A: '1', B: '2', C: '3' })).toBe(envFingerprint({ C: '3', A: '1', B: '2' }));
  });

  it('is stable across calls', () => {
    const env = { API_KEY: 'abc', REGION: 'eu' };
    expect(envFingerprint(env)).toBe(envFingerprint({ ...env }));
  });

  it.each<[Record<string, string>, Record<string, string>]>([
    [{ A: '1' }, { A: '2' }],
    [{ A: '1' }, { B: '1' }],
    [{ A: '1' }, {}],
    [{ A: '' }, {}],
    [{ A: '1' }, { A: '1', B: '' }],
    // Ambiguous under naive concatenation:
    [{ A: 'B=C' }, { A: 'B', C: '' }],
    [{ AB: 'C' }, { A: 'BC' }],
    [{ A: '1\nB=2' }, { A: '1', B: '2' }],
  ])('differs for %j and %j', (a, b) => {
    expect(envFingerprint(a)).not.toBe(envFingerprint(b));
  });
});
