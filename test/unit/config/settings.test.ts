/**
 * parseSettings: every flag of SOURCES parses (from the flag and from its variable, the
 * flag winning), byte sizes, errors naming the flag or variable without echoing secrets,
 * the Fly.io defaults, the replaced --trust-fly-client-ip, --help and --version, and a
 * usage text that lists every flag with its variable and true defaults.
 */
import { describe, expect, it } from '@jest/globals';
import { ENV_ONLY, parseSettings, settingsSchema, SettingsError, SOURCES, USAGE, validateSettings, type Settings } from '../../../src/config/settings.js';

type Key = (typeof SOURCES)[number][2];

/** Per settings key: a flag value, a different variable value, and what the flag value parses to. */
const SAMPLES: Record<Key, readonly [flag: string, env: string, parsed: unknown]> = {
  host: ['0.0.0.0', '::1', '0.0.0.0'],
  port: ['0', '9000', 0],
  commandsFile: ['/etc/warden/a.json', 'b.json', '/etc/warden/a.json'],
  commandsPollMs: ['250', '500', 250],
  onRemove: ['end', 'finish', 'end'],
  logLevel: ['debug', 'warn', 'debug'],
  bodyLimitBytes: ['512kb', '1mb', 512 * 1024],
  allowedHosts: ['a.example, b.example:8443', 'c.example', ['a.example', 'b.example:8443']],
  allowedOrigins: ['https://a.example,*', 'https://c.example', ['https://a.example', '*']],
  maxLineBytes: ['1g', '2mb', 1024 ** 3],
  keepAliveMs: ['5000', '7000', 5000],
  jsonReplyWindowMs: ['0', '500', 0],
  shutdownGraceMs: ['2500', '3000', 2500],
  initializeTimeoutMs: ['1000', '2000', 1000],
  requestTimeoutMs: ['90000', '30000', 90_000],
  maxEnvVariants: ['6', '2', 6],
  inputTimeoutMs: ['60000', '120000', 60_000],
  maxConnections: ['100', '200', 100],
  poolMin: ['0', '2', 0],
  spareTtlMs: ['1000', '2000', 1000],
  eraProbeMs: ['500', '0', 500],
  spawnConcurrency: ['2', '8', 2],
  maxChildren: ['10', '20', 10],
  maxSessionsPerClient: ['3', '4', 3],
  evictIdleMs: ['1000', '0', 1000],
  memorySampleMs: ['250', '1000', 250],
  memoryBudgetMb: ['1024', '2048', 1024],
  memoryReserveMb: ['0', '64', 0],
  maxChildMemoryMb: ['512', '0', 512],
  hibernateAfterMs: ['30000', '1000', 30_000],
  idleTimeoutMs: ['0', '1000', 0],
  maxSessionMs: ['60000', '1', 60_000],
  startupWindowMs: ['250', '50', 250],
  startAttempts: ['10', '1', 10],
  circuitCooldownMs: ['100', '200', 100],
  maxClientBacklogBytes: ['64kb', '1mb', 64 * 1024],
  maxChildQueueBytes: ['1048576', '2mb', 1024 * 1024],
  trustedProxy: ['fly, 10.0.0.0/8', '192.168.0.0/16', ['fly', '10.0.0.0/8']],
  envMode: ['allowlist', 'blocklist', 'allowlist'],
  policyFile: ['policy.json', 'other.json', 'policy.json'],
  policyPollMs: ['250', '500', 250],
  clientsFile: ['clients.json', 'other.json', 'clients.json'],
  defaultRole: ['user.v2', 'guest', 'user.v2'],
  auditFile: ['/var/log/audit.jsonl', 'x.jsonl', '/var/log/audit.jsonl'],
  auditStderr: ['true', 'false', true],
  httpRequestsPerMinute: ['0', '60', 0],
  authFailuresPerWindow: ['5', '6', 5],
  metricsPort: ['9100', '9200', 9100],
  redisPrefix: ['team-a', 'team-b', 'team-a'],
  publicUrl: ['https://a.example/', 'https://b.example:8443', 'https://a.example'],
  oauthTokenTtlMs: ['60000', '120000', 60_000],
  oauthAllowLoopbackMetadata: ['true', 'false', true],
  oauthRegisterRate: ['10', '20', 10],
  oauthIssuer: ['https://idp.example.com/', 'https://kc.example.com/realms/mcp', 'https://idp.example.com/'],
  oauthJwksUrl: ['https://idp.example.com/.well-known/jwks.json', 'https://idp.example.com/keys', 'https://idp.example.com/.well-known/jwks.json'],
  oauthAudience: ['api://warden, https://gw.example/', 'api://other', ['api://warden', 'https://gw.example/']],
  oauthRoleClaim: ['groups', 'realm_access.roles', 'groups'],
  oauthRoleMap: [
    'mcp-users=user, Admins=admin',
    'x=y',
    [
      ['mcp-users', 'user'],
      ['Admins', 'admin'],
    ],
  ],
  oauthRequiredScope: ['gateway', 'api', 'gateway'],
  oauthAllowLoopbackIssuer: ['true', 'false', true],
};

/** Flags a setting needs besides itself (it configures something they turn on). */
const PREREQUISITES: Partial<Record<Key, string[]>> = {
  oauthJwksUrl: ['--oauth-issuer', 'https://idp.example.com/'],
  oauthAudience: ['--oauth-issuer', 'https://idp.example.com/'],
  oauthRoleClaim: ['--oauth-issuer', 'https://idp.example.com/'],
  oauthRoleMap: ['--oauth-issuer', 'https://idp.example.com/', '--oauth-role-claim', 'groups'],
};

const DEFAULTS: Settings = settingsSchema.parse({});

function settingsError(argv: string[], env: Record<string, string> = {}): string {
  try {
    parseSettings(argv, env);
  } catch (error) {
    expect(error).toBeInstanceOf(SettingsError);
    return (error as Error).message;
  }
  throw new Error(`parseSettings accepted ${JSON.stringify(argv)} ${JSON.stringify(env)}`);
}

describe('every SOURCES entry', () => {
  it('has a sample here (a new flag needs one)', () => {
    expect(Object.keys(SAMPLES).sort()).toEqual(SOURCES.map(([, , key]) => key).sort());
  });

  it.each(SOURCES.map((s) => [...s]))('--%s / %s parses, and the flag beats the variable', (flag, variable, key) => {
    const [fromFlag, fromEnv, parsed] = SAMPLES[key as Key];
    const base = PREREQUISITES[key as Key] ?? [];
    expect(parseSettings([...base, `--${flag}`, fromFlag], {}).settings[key as Key]).toEqual(parsed);
    expect(parseSettings([...base, `--${flag}=${fromFlag}`], {}).settings[key as Key]).toEqual(parsed);
    const envOnly = parseSettings(base, { [variable]: fromEnv }).settings[key as Key];
    expect(envOnly).toEqual(parseSettings([...base, `--${flag}`, fromEnv], {}).settings[key as Key]);
    expect(envOnly).not.toEqual(parsed);
    expect(parseSettings([...base, `--${flag}`, fromFlag], { [variable]: fromEnv }).settings[key as Key]).toEqual(parsed);
    // An empty variable counts as unset.
    expect(parseSettings(base, { [variable]: '' }).settings[key as Key]).toEqual(DEFAULTS[key as Key]);
  });
});

describe('byte sizes', () => {
  it.each<[string, number]>([
    ['4194304', 4_194_304],
    ['100b', 100],
    ['512kb', 512 * 1024],
    ['512K', 512 * 1024],
    ['4mb', 4 * 1024 ** 2],
    ['4 MB', 4 * 1024 ** 2],
    ['2m', 2 * 1024 ** 2],
    ['1g', 1024 ** 3],
  ])('%s is %d bytes', (text, bytes) => {
    expect(parseSettings(['--body-limit', text], {}).settings.bodyLimitBytes).toBe(bytes);
  });

  it.each(['1.5mb', '4 megabytes', '-1', 'mb', '0'])('refuses %j naming the flag', (text) => {
    expect(settingsError([`--body-limit=${text}`])).toMatch(/^invalid --body-limit: /);
  });

  it('names the variable when the size came from it', () => {
    expect(settingsError([], { WARDEN_MAX_CHILD_QUEUE: 'lots' })).toBe('invalid WARDEN_MAX_CHILD_QUEUE: must be a byte count such as 4194304 or 4mb');
  });
});

describe('errors name the flag or variable', () => {
  it.each<[string[], Record<string, string>, RegExp]>([
    [['--port', 'eighty'], {}, /^invalid --port: /],
    [[], { PORT: '70000' }, /^invalid PORT: /],
    [['--log-level', 'loud'], {}, /^invalid --log-level: /],
    [[], { WARDEN_POOL_MIN: '65' }, /^invalid WARDEN_POOL_MIN: /],
    [['--start-attempts', '11'], {}, /^invalid --start-attempts: /],
    [['--default-role', 'a b'], {}, /^invalid --default-role: must be 1-64 letters, digits or _\.-$/],
    [[], { WARDEN_TRUSTED_PROXY: 'not-a-cidr' }, /^invalid WARDEN_TRUSTED_PROXY: /],
    [[], { WARDEN_AUDIT_STDERR: 'yes' }, /^invalid WARDEN_AUDIT_STDERR: /],
    [['--no-such-flag'], {}, /--no-such-flag/],
    [['--port'], {}, /--port/],
  ])('%j %j', (argv, env, pattern) => {
    expect(settingsError(argv, env)).toMatch(pattern);
  });

  it('names the secret variables and their minimum lengths, never their values', () => {
    const cases: [Record<string, string>, string][] = [
      [{ WARDEN_SECRET: 'short7!' }, 'invalid WARDEN_SECRET: must be at least 8 characters'],
      [{ WARDEN_ADMIN_TOKEN: 'fifteen-chars!!' }, 'invalid WARDEN_ADMIN_TOKEN: must be at least 16 characters'],
      [{ WARDEN_AUDIT_HMAC_KEY: 'tiny-key' }, 'invalid WARDEN_AUDIT_HMAC_KEY: must be at least 16 characters'],
      [{ WARDEN_OAUTH_KEY: 'thirty-one-characters-long-key!' }, 'invalid WARDEN_OAUTH_KEY: must be at least 32 characters'],
    ];
    for (const [env, expected] of cases) {
      const message = settingsError([], env);
      expect(message).toBe(expected);
      expect(message).not.toContain(Object.values(env)[0]);
    }
    expect(settingsError([], { REDIS_URL: 'not a url hunter2' })).not.toContain('hunter2');
    expect(settingsError([], { REDIS_URL: 'not a url hunter2' })).toMatch(/^invalid REDIS_URL: /);
    expect(parseSettings([], { WARDEN_SECRET: '12345678' }).settings.secret).toBe('12345678');
  });

  it('takes secrets only from the environment: a --secret flag is unknown', () => {
    expect(settingsError(['--secret', 'abcdefgh'])).toMatch(/--secret/);
  });
});

describe('on Fly.io (FLY_APP_NAME set)', () => {
  it("trusts Fly-Client-IP and accepts the app's own host by default", () => {
    const { settings } = parseSettings([], { FLY_APP_NAME: 'my-app' });
    expect(settings.trustedProxy).toEqual(['fly']);
    expect(settings.allowedHosts).toEqual(['my-app.fly.dev']);
  });

  it('lets flags and variables override both defaults', () => {
    const env = { FLY_APP_NAME: 'my-app', WARDEN_ALLOWED_HOSTS: 'mcp.example.com' };
    const { settings } = parseSettings(['--trusted-proxy', '10.0.0.0/8'], env);
    expect(settings.trustedProxy).toEqual(['10.0.0.0/8']);
    expect(settings.allowedHosts).toEqual(['mcp.example.com']);
  });

  it('elsewhere neither default applies', () => {
    const { settings } = parseSettings([], {});
    expect(settings.trustedProxy).toBeUndefined();
    expect(settings.allowedHosts).toBeUndefined();
    expect(settings.publicUrl).toBeUndefined();
  });

  it('names the public origin after the app unless --public-url says otherwise', () => {
    expect(parseSettings([], { FLY_APP_NAME: 'my-app' }).settings.publicUrl).toBe('https://my-app.fly.dev');
    expect(parseSettings(['--public-url', 'https://mcp.example.com'], { FLY_APP_NAME: 'my-app' }).settings.publicUrl).toBe('https://mcp.example.com');
  });

  it('refuses OAuth without REDIS_URL, saying why and what to set', () => {
    const key = 'k'.repeat(32);
    const message = settingsError([], { FLY_APP_NAME: 'my-app', WARDEN_OAUTH_KEY: key });
    expect(message).toMatch(/REDIS_URL is not/);
    expect(message).toMatch(/every machine/);
    expect(message).not.toContain(key);
    expect(parseSettings([], { FLY_APP_NAME: 'my-app', WARDEN_OAUTH_KEY: key, REDIS_URL: 'redis://r.internal:6379' }).settings.oauthKey).toBe(key);
  });
});

describe('--public-url', () => {
  it.each([
    ['http://gw.example.com', /must be https/],
    ['http://127.gw.example.com', /must be https/],
    ['https://gw.example.com/mcp', /origin only/],
    ['https://user:pw@gw.example.com', /user name or password/],
    ['gw.example.com', /must be a URL/],
  ])('refuses %s', (value, pattern) => {
    expect(settingsError(['--public-url', value])).toMatch(pattern);
  });

  it('takes http for a loopback host, and drops a trailing slash', () => {
    expect(parseSettings(['--public-url', 'http://127.0.0.1:8000/'], {}).settings.publicUrl).toBe('http://127.0.0.1:8000');
  });
});

describe('WARDEN_OAUTH_KEY_PREVIOUS', () => {
  it('needs the new key as well', () => {
    expect(settingsError([], { WARDEN_OAUTH_KEY_PREVIOUS: 'p'.repeat(32) })).toMatch(/without WARDEN_OAUTH_KEY/);
  });
});

describe('an external identity provider', () => {
  const ISSUER = 'https://idp.example.com/';

  it('excludes the built-in authorization server, naming both settings', () => {
    expect(settingsError(['--oauth-issuer', ISSUER], { WARDEN_OAUTH_KEY: 'k'.repeat(32) })).toMatch(/^WARDEN_OAUTH_KEY and --oauth-issuer are both set/);
    expect(settingsError([], { WARDEN_OAUTH_KEY: 'k'.repeat(32), WARDEN_OAUTH_ISSUER: ISSUER })).toMatch(
      /^WARDEN_OAUTH_KEY and WARDEN_OAUTH_ISSUER are both set/,
    );
  });

  it.each<[string[], RegExp]>([
    [['--oauth-jwks-url', 'https://idp.example.com/keys'], /^--oauth-jwks-url is set without --oauth-issuer/],
    [['--oauth-audience', 'api://x'], /^--oauth-audience is set without --oauth-issuer/],
    [['--oauth-role-claim', 'groups'], /^--oauth-role-claim is set without --oauth-issuer/],
    [['--oauth-issuer', ISSUER, '--oauth-role-map', 'a=b'], /^--oauth-role-map is set without --oauth-role-claim/],
  ])('refuses %j: it configures something that is off', (argv, pattern) => {
    expect(settingsError(argv)).toMatch(pattern);
  });

  it.each<[string, RegExp]>([
    ['http://idp.example.com/', /^invalid --oauth-issuer: must be https$/],
    ['http://127.0.0.1:9000/', /^invalid --oauth-issuer: must be https \(http on loopback only with --oauth-allow-loopback-issuer/],
    ['https://idp.example.com/#x', /^invalid --oauth-issuer: must not have a fragment/],
    ['idp.example.com', /^invalid --oauth-issuer: must be a URL/],
  ])('refuses the issuer %s', (issuer, pattern) => {
    expect(settingsError(['--oauth-issuer', issuer])).toMatch(pattern);
  });

  it('keeps the issuer exactly as written, and takes http on loopback only with the test switch', () => {
    expect(parseSettings(['--oauth-issuer', 'https://idp.example.com'], {}).settings.oauthIssuer).toBe('https://idp.example.com');
    expect(parseSettings(['--oauth-issuer', 'http://127.0.0.1:9000/realms/x', '--oauth-allow-loopback-issuer', 'true'], {}).settings.oauthIssuer).toBe(
      'http://127.0.0.1:9000/realms/x',
    );
    expect(settingsError(['--oauth-issuer', 'http://idp.example.com/', '--oauth-allow-loopback-issuer', 'true'])).toMatch(/must be https$/);
  });

  it.each(['users', 'users=', '=admin', 'users=bad role'])('refuses the role map %j', (map) => {
    expect(settingsError(['--oauth-issuer', ISSUER, '--oauth-role-claim', 'groups', '--oauth-role-map', map])).toMatch(
      /^invalid --oauth-role-map: .*claimValue=role/,
    );
  });

  it('reads a claim value holding = up to its last =, in the order given', () => {
    const map = parseSettings(['--oauth-issuer', ISSUER, '--oauth-role-claim', 'groups', '--oauth-role-map', 'team=ops=admin, users=user'], {}).settings
      .oauthRoleMap;
    expect(map).toEqual([
      ['team=ops', 'admin'],
      ['users', 'user'],
    ]);
  });

  it('checks the mcp scope unless the setting is empty (the flag) or none (either source)', () => {
    expect(DEFAULTS.oauthRequiredScope).toBe('mcp');
    expect(parseSettings(['--oauth-required-scope='], {}).settings.oauthRequiredScope).toBe('');
    expect(parseSettings([], { WARDEN_OAUTH_REQUIRED_SCOPE: 'none' }).settings.oauthRequiredScope).toBe('');
    expect(settingsError(['--oauth-required-scope', 'a b'])).toMatch(/^invalid --oauth-required-scope: must be one scope/);
  });
});

describe('--trust-fly-client-ip', () => {
  const replaced = '--trust-fly-client-ip (WARDEN_TRUST_FLY_CLIENT_IP) was replaced by --trusted-proxy fly (WARDEN_TRUSTED_PROXY=fly)';
  it.each<[string[], Record<string, string>]>([
    [['--trust-fly-client-ip'], {}],
    [['--trust-fly-client-ip=true'], {}],
    [['--trust-fly-client-ip', 'false'], {}],
    [[], { WARDEN_TRUST_FLY_CLIENT_IP: 'true' }],
  ])('%j %j says what replaced it', (argv, env) => {
    expect(settingsError(argv, env)).toBe(replaced);
  });
});

describe('--help and --version', () => {
  it.each<[string[], boolean, boolean]>([
    [['--help'], true, false],
    [['-h'], true, false],
    [['--version'], false, true],
    [['-v'], false, true],
    [['--port', '1', '-v'], false, true],
    [[], false, false],
  ])('%j', (argv, help, version) => {
    const cli = parseSettings(argv, {});
    expect(cli.help).toBe(help);
    expect(cli.version).toBe(version);
  });

  it('work even when a setting in the environment is invalid', () => {
    expect(parseSettings(['--help'], { PORT: 'eighty', WARDEN_SECRET: 'short' }).help).toBe(true);
    expect(parseSettings(['--version'], { PORT: 'eighty' }).version).toBe(true);
  });
});

describe('USAGE', () => {
  /** Each option's entry: its line plus the indented continuation lines. */
  const entries = USAGE.split(/\n(?= {2}-)/);
  const entryOf = (flag: string) => entries.find((e) => e.startsWith(`  --${flag} `) || e.includes(`, --${flag} `));

  it.each(SOURCES.map((s) => [...s]))('lists --%s with %s', (flag, variable) => {
    const entry = entryOf(flag);
    expect(entry).toBeDefined();
    expect(entry).toContain(`(${variable}`);
  });

  it('states defaults that are the real ones', () => {
    let checked = 0;
    for (const [flag, , key] of SOURCES) {
      const stated = /default "?([\w.-]+)"?\)/.exec(entryOf(flag) ?? '')?.[1];
      if (stated === undefined) continue;
      expect([flag, validateSettings({ [key]: stated })[key]]).toEqual([flag, DEFAULTS[key]]);
      checked += 1;
    }
    expect(checked).toBeGreaterThanOrEqual(30);
  });

  it('lists --help, --version, every environment-only variable and the secret minimum', () => {
    expect(entryOf('help')).toMatch(/^ {2}-h, --help /);
    expect(entryOf('version')).toMatch(/^ {2}-v, --version /);
    for (const variable of ENV_ONLY) expect(USAGE).toMatch(new RegExp(`^  ${variable} `, 'm'));
    expect(USAGE).toMatch(/^ {2}WARDEN_SECRET .*at least 8 characters/m);
    expect(USAGE).toContain('mcp-warden audit verify FILE\n');
  });

  it('never runs two sentences together (a placeholder glued to the next word)', () => {
    for (const line of USAGE.split('\n')) expect(line).not.toMatch(/[A-Z]{2,}[A-Z][a-z]{2,}/);
  });
});
