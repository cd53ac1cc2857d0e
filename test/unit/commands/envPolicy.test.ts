import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { validateEnvHeaders } from '../../../src/commands/env.js';
import { ENV_FAMILIES, envFamilyOf, isBlockedEnvName, isWallEnvName, patternMatches, wallFamilyOfAllowedEntry } from '../../../src/commands/envPolicy.js';
import type { CommandSpec } from '../../../src/commands/types.js';

const anyName: CommandSpec = { key: 'k', command: 'node', args: [], cwd: '/srv', env: {}, allowedEnv: undefined, description: undefined };

/**
 * The blocklist as it stood before families (`git show cf086c0:src/commands/env.ts`,
 * ENV_BLOCKLIST). Nothing on it may become accepted.
 */
const BLOCKLIST_BEFORE_FAMILIES = [
  'LD_*',
  'DYLD_*',
  'GCONV_PATH',
  'LOCPATH',
  'NLSPATH',
  'MALLOC_*',
  'GLIBC_TUNABLES',
  'HOSTALIASES',
  'RES_OPTIONS',
  'LOCALDOMAIN',
  'PATH',
  'HOME',
  'TMPDIR',
  'XDG_*',
  'NODE_*',
  'NPM_CONFIG_*',
  'COREPACK_*',
  'BASH_ENV',
  'ENV',
  'BASH_FUNC_*',
  'SHELLOPTS',
  'BASHOPTS',
  'PS4',
  'PROMPT_COMMAND',
  'IFS',
  'CDPATH',
  'GLOBIGNORE',
  'ZDOTDIR',
  'SHELL',
  'PYTHON*',
  'PIP_*',
  'UV_*',
  'PERL5*',
  'PERLLIB',
  'RUBYOPT',
  'RUBYLIB',
  'GEM_*',
  'BUNDLE_*',
  'JAVA_TOOL_OPTIONS',
  '_JAVA_OPTIONS',
  'JDK_JAVA_OPTIONS',
  'JAVA_OPTS',
  'CLASSPATH',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'ALL_PROXY',
  'NO_PROXY',
  'FTP_PROXY',
  'GIT_*',
  'SSH_*',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  'REQUESTS_CA_BUNDLE',
  'CURL_CA_BUNDLE',
  'NODE_EXTRA_CA_CERTS',
  'OPENSSL_*',
  'FLY_*',
  'AWS_*',
  'WARDEN_*',
  'ELECTRON_*',
  'DENO_*',
  'BUN_*',
];

/** Names an old entry stands for: the name itself, or the bare prefix and a few under it. */
function samples(entry: string): string[] {
  if (!entry.endsWith('*')) return [entry];
  const prefix = entry.slice(0, -1);
  return [prefix, `${prefix}X`, `${prefix}SAMPLE_1`, `${prefix}_`, `${prefix}9`].filter((name) => /^[A-Z_][A-Z0-9_]*$/.test(name));
}

describe('nothing blocked before families is accepted now', () => {
  it.each(BLOCKLIST_BEFORE_FAMILIES.flatMap(samples))('%s is refused without allowedEnv, in any case', (name) => {
    for (const sent of [name, name.toLowerCase()]) {
      expect(isBlockedEnvName(sent)).toBe(true);
      expect(() => validateEnvHeaders([{ name: sent, value: 'v' }], anyName)).toThrow(`environment variable ${name} is not accepted`);
    }
  });
});

describe('patternMatches', () => {
  it.each<[string, string, boolean]>([
    ['PATH', 'PATH', true],
    ['PATH', 'PATHX', false],
    ['PATH', 'XPATH', false],
    ['LD_*', 'LD_PRELOAD', true],
    ['LD_*', 'LD_', true],
    ['LD_*', 'LD', false],
    ['LD_*', 'XLD_PRELOAD', false],
    ['*_PROXY', 'HTTP_PROXY', true],
    ['*_PROXY', '_PROXY', true],
    ['*_PROXY', 'HTTP_PROXY_URL', false],
    ['*_PROXY', 'PROXY', false],
    ['GO+', 'GOFLAGS', true],
    ['GO+', 'GO111MODULE', true],
    ['GO+', 'GO', false],
    ['GO+', 'GOOGLE_API_KEY', false],
    ['GO+', 'GO_X', false],
  ])('%s against %s: %s', (pattern, name, expected) => {
    expect(patternMatches(pattern, name)).toBe(expected);
  });
});

describe('ENV_FAMILIES', () => {
  it('is frozen data: unique ids, a reason each, upper-case patterns of the four shapes', () => {
    expect(Object.isFrozen(ENV_FAMILIES)).toBe(true);
    expect(new Set(ENV_FAMILIES.map((f) => f.id)).size).toBe(ENV_FAMILIES.length);
    for (const family of ENV_FAMILIES) {
      expect(Object.isFrozen(family)).toBe(true);
      expect(Object.isFrozen(family.patterns)).toBe(true);
      expect(['wall', 'blocked']).toContain(family.tier);
      expect(family.why.length).toBeGreaterThan(10);
      for (const pattern of family.patterns) expect(pattern).toMatch(/^(\*?[A-Z_][A-Z0-9_]*|[A-Z_][A-Z0-9_]*[*+])$/);
    }
  });

  it('every pattern refuses the names it stands for, in its own family or the wall', () => {
    for (const family of ENV_FAMILIES) {
      for (const pattern of family.patterns) {
        const name = pattern.startsWith('*') ? `SAMPLE${pattern.slice(1)}` : pattern.replace(/[*+]$/, pattern.endsWith('+') ? 'X1' : 'SAMPLE');
        const found = envFamilyOf(name);
        expect(found).toBeDefined();
        if (found !== family) expect(found?.tier).toBe('wall');
      }
    }
  });

  it('the wall wins where a name is in both tiers', () => {
    expect(envFamilyOf('GIT_SSH_COMMAND')?.tier).toBe('wall');
    expect(envFamilyOf('git_config_global')?.id).toBe('git-config');
    expect(envFamilyOf('GIT_AUTHOR_NAME')?.id).toBe('daemon');
    expect(envFamilyOf('LESSOPEN')?.id).toBe('program');
    expect(envFamilyOf('LESSKEY')?.id).toBe('terminal');
    expect(envFamilyOf('NODE_EXTRA_CA_CERTS')?.id).toBe('interpreter');
    expect(isWallEnvName('ssh_askpass')).toBe(true);
    expect(isWallEnvName('SSH_AUTH_SOCK')).toBe(false);
    expect(envFamilyOf('API_KEY')).toBeUndefined();
  });
});

describe('wallFamilyOfAllowedEntry', () => {
  it.each([
    ['LD_PRELOAD', 'loader'],
    ['PATH', 'program'],
    ['NODE_OPTIONS', 'interpreter'],
    ['GIT_SSH_COMMAND', 'program'],
    ['NODE_*', 'interpreter'],
    ['LD_PRE*', 'loader'],
    ['PYTHON*', 'interpreter'],
    ['GIT_CONFIG_*', 'git-config'],
    ['NPM_CONFIG_*', 'package-manager'],
  ])('%s names the wall (%s)', (entry, id) => {
    expect(wallFamilyOfAllowedEntry(entry)?.id).toBe(id);
  });

  it.each(['API_KEY', 'TZ', 'LANG', 'GIT_AUTHOR_NAME', 'DOCKER_HOST', 'GIT_*', 'AWS_*', 'N*', 'GO*', 'GOFLAGS_*', 'MY_*'])(
    '%s does not (it opens only names off the wall)',
    (entry) => {
      expect(wallFamilyOfAllowedEntry(entry)).toBeUndefined();
    },
  );
});

describe('docs/env.md', () => {
  const docs = readFileSync(new URL('../../../docs/env.md', import.meta.url), 'utf8');

  it.each(ENV_FAMILIES.map((f) => [f.id, f] as const))('documents family %s and each of its patterns', (_id, family) => {
    const row = docs.split('\n').find((line) => line.startsWith(`| \`${family.id}\` |`));
    expect(row).toBeDefined();
    for (const pattern of family.patterns) expect(row).toContain(`\`${pattern}\``);
  });
});
