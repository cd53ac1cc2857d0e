import { afterEach, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import {
  EMPTY_ENV_FINGERPRINT,
  buildChildEnv,
  defaultChildEnvBase,
  envFingerprint,
  extractEnvHeaders,
  validateEnvHeaders,
  type EnvHeaderEntry,
  type EnvValidationOptions,
} from '../../../src/commands/env.js';
import { envFamilyOf, isBlockedEnvName, isWallEnvName } from '../../../src/commands/envPolicy.js';
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

function rejection(entries: EnvHeaderEntry[], s: CommandSpec = anyName, limits: EnvValidationOptions = {}): EnvRejectedError {
  try {
    validateEnvHeaders(entries, s, limits);
  } catch (error) {
    expect(error).toBeInstanceOf(EnvRejectedError);
    return error as EnvRejectedError;
  }
  throw new Error('expected validateEnvHeaders to throw');
}

function expectRejected(
  entries: EnvHeaderEntry[],
  name: string,
  reason: string,
  s: CommandSpec = anyName,
  limits: EnvValidationOptions = {},
): EnvRejectedError {
  const error = rejection(entries, s, limits);
  expect(error.data).toMatchObject({ variable: name, reason });
  expect(error.code).toBe('env_rejected');
  expect(error.status).toBe(400);
  expect(error.message).toContain(name);
  return error;
}

describe('extractEnvHeaders', () => {
  it('picks env_* headers, upper-casing the rest of the name', () => {
    const entries = extractEnvHeaders({
      env_api_key: 'k1',
      ENV_Mixed_Case: 'k2',
      Env_x: 'k3',
      'content-type': 'application/json',
      environment: 'nope',
      'x-env_foo': 'nope',
      envfoo: 'nope',
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

describe('families: refused without allowedEnv', () => {
  // One row per family of docs/env.md, with the examples each must refuse. Every name is
  // tried as sent (upper), lower-cased and with a lower-case first letter.
  const wall: Array<[string, string[]]> = [
    ['loaders', ['LD_PRELOAD', 'LD_LIBRARY_PATH', 'LD_AUDIT', 'DYLD_INSERT_LIBRARIES', 'GCONV_PATH', 'OPENSSL_CONF', 'OPENSSL_MODULES']],
    [
      'interpreter options',
      [
        'NODE_OPTIONS',
        'NODE_PATH',
        'NODE_EXTRA_CA_CERTS',
        'PYTHONPATH',
        'PYTHONSTARTUP',
        'PYTHONHOME',
        'PERL5OPT',
        'PERL5LIB',
        'PERL5DB',
        'PERLLIB',
        'RUBYOPT',
        'RUBYLIB',
        'JAVA_TOOL_OPTIONS',
        '_JAVA_OPTIONS',
        'JDK_JAVA_OPTIONS',
        'JAVA_OPTS',
        'CLASSPATH',
        'DOTNET_STARTUP_HOOKS',
        'DOTNET_ADDITIONAL_DEPS',
        'CORECLR_PROFILER',
        'CORECLR_PROFILER_PATH',
        'COMPlus_EnableDiagnostics',
        'ELECTRON_RUN_AS_NODE',
        'DENO_DIR',
        'BUN_INSTALL',
        'LUA_INIT',
        'PHPRC',
        'PHP_INI_SCAN_DIR',
      ],
    ],
    [
      'package managers and toolchains',
      [
        'NPM_CONFIG_REGISTRY',
        'npm_config_script_shell',
        'COREPACK_NPM_REGISTRY',
        'PIP_INDEX_URL',
        'UV_INDEX_URL',
        'UV_DEFAULT_INDEX',
        'PIPX_HOME',
        'YARN_RC_FILENAME',
        'YARN_NPM_REGISTRY_SERVER',
        'GEM_HOME',
        'BUNDLE_GEMFILE',
        'GOFLAGS',
        'GOPROXY',
        'GOTOOLCHAIN',
        'GOAUTH',
        'GO111MODULE',
        'CGO_LDFLAGS',
        'CARGO_HOME',
        'CARGO_BUILD_RUSTC_WRAPPER',
        'RUSTC_WRAPPER',
        'RUSTC',
        'RUSTUP_TOOLCHAIN',
        'RUSTFLAGS',
      ],
    ],
    ['native builds', ['CC', 'CXX', 'LD', 'CFLAGS', 'LDFLAGS', 'MAKEFLAGS']],
    ['shells', ['BASH_ENV', 'ENV', 'BASH_FUNC_X', 'SHELLOPTS', 'BASHOPTS', 'PS4', 'PS1', 'PROMPT_COMMAND', 'IFS', 'CDPATH', 'GLOBIGNORE', 'ZDOTDIR']],
    [
      'programs it execs',
      [
        'PATH',
        'SHELL',
        'PAGER',
        'GIT_PAGER',
        'MANPAGER',
        'EDITOR',
        'GIT_EDITOR',
        'VISUAL',
        'BROWSER',
        'LESSOPEN',
        'LESSCLOSE',
        'SSH_ASKPASS',
        'GIT_ASKPASS',
        'SUDO_ASKPASS',
        'GIT_SSH',
        'GIT_SSH_COMMAND',
        'GIT_EXEC_PATH',
        'GIT_EXTERNAL_DIFF',
        'DBUS_SESSION_BUS_ADDRESS',
        'PUPPETEER_EXECUTABLE_PATH',
      ],
    ],
    ['git configuration', ['GIT_CONFIG', 'GIT_CONFIG_GLOBAL', 'GIT_CONFIG_COUNT', 'GIT_CONFIG_KEY_0', 'GIT_CONFIG_PARAMETERS', 'GIT_DIR', 'GIT_TEMPLATE_DIR']],
  ];
  const blocked: Array<[string, string[]]> = [
    [
      'daemons and credentials',
      [
        'DOCKER_HOST',
        'DOCKER_CONFIG',
        'DOCKER_CERT_PATH',
        'KUBECONFIG',
        'GIT_AUTHOR_NAME',
        'GIT_WORK_TREE',
        'SSH_AUTH_SOCK',
        'AWS_CONFIG_FILE',
        'AWS_SHARED_CREDENTIALS_FILE',
        'AWS_REGION',
        'AWS_SECRET_ACCESS_KEY',
        'GOOGLE_APPLICATION_CREDENTIALS',
        'NETRC',
      ],
    ],
    [
      'network and TLS',
      [
        'HTTP_PROXY',
        'https_proxy',
        'ALL_PROXY',
        'NO_PROXY',
        'Grpc_Proxy',
        'SSL_CERT_FILE',
        'SSL_CERT_DIR',
        'SSLKEYLOGFILE',
        'CURL_CA_BUNDLE',
        'REQUESTS_CA_BUNDLE',
        'HOSTALIASES',
        'RES_OPTIONS',
        'LOCALDOMAIN',
      ],
    ],
    ['C library', ['MALLOC_CHECK_', 'MALLOC_ARENA_MAX', 'GLIBC_TUNABLES', 'LOCPATH', 'NLSPATH']],
    ['terminal programs', ['LESS', 'LESSKEY', 'LESSCHARSET', 'TERMINFO', 'TERMINFO_DIRS', 'TERMCAP']],
    ["the process's frame", ['HOME', 'TMPDIR', 'XDG_CONFIG_HOME', 'XDG_RUNTIME_DIR', 'TZ', 'LANG', 'LC_ALL', 'LC_CTYPE']],
    ['platform and gateway', ['FLY_API_TOKEN', 'FLY_APP_NAME', 'WARDEN_SECRET', 'WARDEN_ENV_MODE']],
  ];
  const spellings = (name: string) => [name, name.toLowerCase(), name.charAt(0).toLowerCase() + name.slice(1)];

  describe.each(wall)('the wall: %s', (_family, names) => {
    it.each(names)('%s is never accepted, not even when allowedEnv lists it exactly', (name) => {
      const upper = name.toUpperCase();
      for (const sent of spellings(name)) {
        expect(isWallEnvName(sent)).toBe(true);
        const error = expectRejected([{ name: sent, value: 'v' }], upper, 'never accepted');
        expect(error.data).toMatchObject({ setting: 'none', family: envFamilyOf(upper)!.id });
        expect(error.message).toBe(`environment variable ${upper} is not accepted: never accepted (it makes the server load or run code)`);
      }
      expectRejected([{ name, value: 'v' }], upper, 'never accepted', spec({ allowedEnv: [upper] }));
      expectRejected([{ name, value: 'v' }], upper, 'never accepted', anyName, { mode: 'allowlist' });
    });
  });

  describe.each(blocked)('the blocklist: %s', (_family, names) => {
    it.each(names)('%s is refused, an exact allowedEnv entry opens it, a prefix does not', (name) => {
      const upper = name.toUpperCase();
      const family = envFamilyOf(upper)!;
      expect(family.tier).toBe('blocked');
      for (const sent of spellings(name)) {
        expect(isWallEnvName(sent)).toBe(false);
        const error = expectRejected([{ name: sent, value: 'v' }], upper, 'blocked');
        expect(error.data).toMatchObject({ setting: 'allowedEnv', family: family.id });
        expect(error.message).toBe(
          `environment variable ${upper} is not accepted: blocked (a family that ${family.why}); ` +
            'an admin may open this exact name with "allowedEnv" on the entry',
        );
      }
      expect(validateEnvHeaders([{ name, value: 'v' }], spec({ allowedEnv: [upper] }))).toEqual({ [upper]: 'v' });
      expect(validateEnvHeaders([{ name, value: 'v' }], spec({ allowedEnv: ['OTHER', upper] }), { mode: 'allowlist' })).toEqual({ [upper]: 'v' });
      for (const prefix of [`${upper.slice(0, 1)}*`, `${upper.slice(0, -1)}*`, `${upper}*`]) {
        expectRejected([{ name, value: 'v' }], upper, 'blocked', spec({ allowedEnv: [prefix] }));
      }
    });
  });

  it('the DOCKER_HOST message names the family and the setting, as documented', () => {
    const error = expectRejected([{ name: 'docker_host', value: 'tcp://evil:2375' }], 'DOCKER_HOST', 'blocked');
    expect(error.message).toBe(
      'environment variable DOCKER_HOST is not accepted: blocked (a family that redirects a daemon or credentials); ' +
        'an admin may open this exact name with "allowedEnv" on the entry',
    );
    expect(error.data).toEqual({ variable: 'DOCKER_HOST', reason: 'blocked', setting: 'allowedEnv', family: 'daemon' });
  });

  it.each([
    'API_KEY',
    'GITHUB_TOKEN',
    'GITHUB_PERSONAL_ACCESS_TOKEN',
    'OPENAI_API_KEY',
    'GOOGLE_API_KEY',
    'GOOGLE_MAPS_API_KEY',
    'DEBUG',
    'PATHX',
    'HOMEPAGE',
    'MY_PATH',
    'XLD_PRELOAD',
    'ENVIRONMENT',
    'SHELL_COLOR',
    'NODEJS',
    'LANGUAGE_MODEL',
    'TZ_NAME',
    'CCACHE',
    'PROXY_URL',
    'GO',
    'BRAVE_API_KEY',
    'SLACK_BOT_TOKEN',
  ])('accepts %s (no family)', (name) => {
    expect(isBlockedEnvName(name)).toBe(false);
    expect(validateEnvHeaders([{ name, value: 'v' }], anyName)).toEqual({ [name]: 'v' });
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
      expect(error.message).toBe('environment variable A?B?SCRIPT? is not accepted: invalid name (letters, digits and underscores, not starting with a digit)');
    });

    it.each([
      ['MY-VAR', 'MY?VAR', 'ENV_MY_VAR'],
      ['my-var', 'MY?VAR', 'ENV_MY_VAR'],
      ['api.key', 'API?KEY', 'ENV_API_KEY'],
      ['X-Y-Z', 'X?Y?Z', 'ENV_X_Y_Z'],
    ])('suggests underscores for %s', (name, shown, suggestion) => {
      const error = rejection([{ name, value: 'v' }]);
      expect(error.data).toEqual({ variable: shown, reason: 'invalid name', suggestion });
      expect(error.message).toBe(
        `environment variable ${shown} is not accepted: invalid name (use ${suggestion}: a name takes letters, digits and underscores)`,
      );
    });

    it.each(['1-A', 'A-<B', 'A-B ŝ'])('suggests nothing when underscores would not make %j valid', (name) => {
      const error = rejection([{ name, value: 'v' }]);
      expect(error.data).not.toHaveProperty('suggestion');
      expect(error.message).not.toContain('use ENV_');
    });

    it('names the length rule for a name over 128 characters', () => {
      expect(rejection([{ name: `${'A'.repeat(128)}-B`, value: 'v' }]).message).toContain('(at most 128 characters)');
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

    it('names the setting when a name is not listed', () => {
      const error = expectRejected([{ name: 'OTHER', value: 'v' }], 'OTHER', 'not allowed for this command', restricted);
      expect(error.data).toEqual({ variable: 'OTHER', reason: 'not allowed for this command', setting: 'allowedEnv' });
      expect(error.message).toBe('environment variable OTHER is not accepted: not allowed for this command (the entry\'s "allowedEnv" does not list it)');
    });

    it('an exact entry opens a blocklisted name; the wall stays closed', () => {
      const opened = spec({ allowedEnv: ['TZ', 'LANG', 'GIT_AUTHOR_NAME', 'AWS_REGION', 'PATH', 'LD_PRELOAD', 'NODE_OPTIONS'] });
      expect(
        validateEnvHeaders(
          [
            { name: 'tz', value: 'Europe/Paris' },
            { name: 'LANG', value: 'de_DE.UTF-8' },
            { name: 'git_author_name', value: 'A' },
            { name: 'AWS_REGION', value: 'eu-west-1' },
          ],
          opened,
        ),
      ).toEqual({ TZ: 'Europe/Paris', LANG: 'de_DE.UTF-8', GIT_AUTHOR_NAME: 'A', AWS_REGION: 'eu-west-1' });
      expectRejected([{ name: 'PATH', value: '/tmp' }], 'PATH', 'never accepted', opened);
      expectRejected([{ name: 'ld_preload', value: '/x.so' }], 'LD_PRELOAD', 'never accepted', opened);
      expectRejected([{ name: 'NODE_OPTIONS', value: '--require x' }], 'NODE_OPTIONS', 'never accepted', opened);
    });

    it('a prefix entry never opens a blocklisted name', () => {
      const prefixes = spec({ allowedEnv: ['GIT_*', 'AWS_*', 'T*', 'LC_*', 'HTTP*', 'MY_*'] });
      expect(
        validateEnvHeaders(
          [
            { name: 'MY_TOKEN', value: 'v' },
            { name: 'TOKEN', value: 'w' },
          ],
          prefixes,
        ),
      ).toEqual({ MY_TOKEN: 'v', TOKEN: 'w' });
      for (const name of ['GIT_AUTHOR_NAME', 'AWS_REGION', 'TZ', 'TMPDIR', 'LC_ALL', 'HTTP_PROXY']) {
        expectRejected([{ name, value: 'v' }], name, 'blocked', prefixes);
      }
      expectRejected([{ name: 'GIT_SSH_COMMAND', value: 'v' }], 'GIT_SSH_COMMAND', 'never accepted', prefixes);
    });

    it('a name the entry fixes is refused as fixed, a wall name as never accepted', () => {
      const fixed = spec({ env: { LANG: 'en_US.UTF-8', PYTHONPATH: '/admin' }, allowedEnv: ['LANG'] });
      const error = expectRejected([{ name: 'LANG', value: 'C' }], 'LANG', 'fixed by the whitelist entry', fixed);
      expect(error.data).toMatchObject({ setting: 'env' });
      expectRejected([{ name: 'PYTHONPATH', value: '/x' }], 'PYTHONPATH', 'never accepted', fixed);
    });
  });

  describe('--env-mode', () => {
    it('blocklist (the default) accepts any name off the blocklist for an entry without allowedEnv', () => {
      expect(validateEnvHeaders([{ name: 'API_KEY', value: 'v' }], anyName)).toEqual({ API_KEY: 'v' });
      expect(validateEnvHeaders([{ name: 'API_KEY', value: 'v' }], anyName, { mode: 'blocklist' })).toEqual({ API_KEY: 'v' });
    });

    it.each(['API_KEY', 'GITHUB_TOKEN', 'A'])('allowlist refuses %s for an entry without allowedEnv', (name) => {
      const error = expectRejected([{ name, value: 'v' }], name, 'not allowed for this command', anyName, { mode: 'allowlist' });
      expect(error.data).toEqual({ variable: name, reason: 'not allowed for this command', setting: 'allowedEnv', envMode: 'allowlist' });
      expect(error.message).toBe(
        `environment variable ${name} is not accepted: not allowed for this command (--env-mode allowlist: the entry must list it in "allowedEnv")`,
      );
    });

    it('allowlist still accepts no headers, and what an entry lists', () => {
      expect(validateEnvHeaders([], anyName, { mode: 'allowlist' })).toEqual({});
      const listed = spec({ allowedEnv: ['API_KEY', 'MY_*', 'TZ'] });
      const entries = [
        { name: 'API_KEY', value: '1' },
        { name: 'MY_X', value: '2' },
        { name: 'TZ', value: 'UTC' },
      ];
      expect(validateEnvHeaders(entries, listed, { mode: 'allowlist' })).toEqual({ API_KEY: '1', MY_X: '2', TZ: 'UTC' });
      expectRejected([{ name: 'OTHER', value: 'v' }], 'OTHER', 'not allowed for this command', listed, { mode: 'allowlist' });
    });

    it('rejects an unknown mode with TypeError', () => {
      expect(() => validateEnvHeaders([], anyName, { mode: 'open' as never })).toThrow('mode must be blocklist or allowlist');
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
    const cases: Array<[string, EnvHeaderEntry[], CommandSpec, EnvValidationOptions]> = [
      ['never accepted', [{ name: 'LD_PRELOAD', value: MARKER }], anyName, {}],
      ['blocked', [{ name: 'DOCKER_HOST', value: MARKER }], anyName, {}],
      ['not allowed', [{ name: 'OTHER', value: MARKER }], spec({ allowedEnv: ['API_KEY'] }), {}],
      ['invalid value', [{ name: 'A', value: `${MARKER}\n` }], anyName, {}],
      ['value too long', [{ name: 'A', value: MARKER.repeat(1000) }], anyName, {}],
      [
        'duplicate',
        [
          { name: 'A', value: MARKER },
          { name: 'A', value: MARKER },
        ],
        anyName,
        {},
      ],
      ['invalid name', [{ name: '1A', value: MARKER }], anyName, {}],
      ['invalid name with a suggestion', [{ name: 'MY-VAR', value: MARKER }], anyName, {}],
      ['too many', Array.from({ length: 65 }, (_, i) => ({ name: `V${i}`, value: MARKER })), anyName, {}],
      ['allowlist mode', [{ name: 'API_KEY', value: MARKER }], anyName, { mode: 'allowlist' }],
    ];
    it.each(cases)('%s', (_label, entries, s, options) => {
      const error = rejection(entries, s, options);
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
    const env = buildChildEnv(spec({ env: { PATH: '/admin/bin', FIXED: 'admin', SHARED: 'admin' } }), { SHARED: 'client', API_KEY: 'k' }, base);
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
