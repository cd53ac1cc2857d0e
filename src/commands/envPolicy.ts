/**
 * Which variable names a client may set with `ENV_*` headers: families of names, each with
 * the reason it is refused, in two tiers.
 *
 *  - `wall`: the variable makes the child load or run code the client chose (a library, a
 *    module, interpreter options, a startup script, a program it execs, a package index it
 *    installs from). Never accepted from a client, not even when the entry's `allowedEnv`
 *    names it; a whitelist whose `allowedEnv` names one does not load.
 *  - `blocked`: the variable redirects the child (a daemon, credentials, the network, TLS
 *    trust, its own frame). Refused unless the entry's `allowedEnv` lists the exact name.
 *
 * Patterns are compared with the upper-cased name: `NAME` exact, `NAME*` prefix, `*NAME`
 * suffix, `NAME+` the prefix followed by letters and digits only (Go's `GOFLAGS`,
 * `GOPROXY`, `GO111MODULE`, but not `GOOGLE_API_KEY`). The wall is checked first. The
 * admin's fixed `env` in the whitelist is trusted and not checked here.
 * docs/env.md explains each family; keep the two in step.
 */

export type EnvTier = 'wall' | 'blocked';

/** How entries without `allowedEnv` treat `ENV_*` headers. */
export const ENV_MODES = ['blocklist', 'allowlist'] as const;
export type EnvMode = (typeof ENV_MODES)[number];

export interface EnvFamily {
  /** Stable id, sent as `data.family` in a 400. */
  readonly id: string;
  readonly tier: EnvTier;
  /** Why the family is refused; completes "a family that ...". */
  readonly why: string;
  readonly patterns: readonly string[];
}

const family = (id: string, tier: EnvTier, why: string, patterns: string[]): EnvFamily => Object.freeze({ id, tier, why, patterns: Object.freeze(patterns) });

export const ENV_FAMILIES: readonly EnvFamily[] = Object.freeze([
  // ---- The wall: the child would load or run code the client chose. ----
  family('loader', 'wall', 'loads shared libraries or plug-ins into the process (dynamic loader, iconv modules, OpenSSL config and engines)', [
    'LD_*',
    'DYLD_*',
    'GCONV_PATH',
    'OPENSSL_*',
  ]),
  family('interpreter', 'wall', 'passes options, module paths or startup code to an interpreter or runtime', [
    'NODE_*',
    'ELECTRON_*',
    'DENO_*',
    'BUN_*',
    'PYTHON*',
    'PERL*',
    'RUBY*',
    'LUA_*',
    'ERL_*',
    'R_PROFILE*',
    'R_ENVIRON*',
    'R_LIBS*',
    'TCLLIBPATH',
    'PHPRC',
    'PHP_INI_*',
    'JAVA_TOOL_OPTIONS',
    '_JAVA_OPTIONS',
    'JDK_JAVA_OPTIONS',
    'JAVA_OPTS',
    'CLASSPATH',
    'DOTNET_*',
    'CORECLR_*',
    'COMPLUS_*',
  ]),
  family(
    'package-manager',
    'wall',
    'picks the package index, config or wrapper of a package manager or toolchain (for npx, uvx or go run: the code that runs)',
    [
      'NPM_CONFIG_*',
      'COREPACK_*',
      'PNPM_*',
      'YARN_*',
      'PIP_*',
      'PIPX_*',
      'UV_*',
      'GEM_*',
      'BUNDLE_*',
      'GO+',
      'CGO_*',
      'CARGO_*',
      'RUSTC',
      'RUSTC_*',
      'RUSTUP_*',
      'RUSTFLAGS',
      'RUSTDOCFLAGS',
    ],
  ),
  family('build', 'wall', 'names the compiler, linker or flags a native build runs', [
    'CC',
    'CXX',
    'CPP',
    'LD',
    'AR',
    'CFLAGS',
    'CXXFLAGS',
    'CPPFLAGS',
    'LDFLAGS',
    'MAKEFLAGS',
  ]),
  family('shell', 'wall', 'is read by a shell: startup files, exported functions, prompt and trace strings, parsing flags', [
    'BASH_ENV',
    'ENV',
    'BASH_FUNC_*',
    'SHELLOPTS',
    'BASHOPTS',
    'PS0',
    'PS1',
    'PS2',
    'PS3',
    'PS4',
    'PROMPT_COMMAND',
    'IFS',
    'CDPATH',
    'GLOBIGNORE',
    'ZDOTDIR',
  ]),
  family('program', 'wall', 'names a program the child runs (search path, shell, pager, editor, browser, askpass, ssh, bus)', [
    'PATH',
    'SHELL',
    'PAGER',
    '*PAGER',
    'EDITOR',
    '*_EDITOR',
    'VISUAL',
    'BROWSER',
    'LESSOPEN',
    'LESSCLOSE',
    'LESSEDIT',
    '*ASKPASS',
    'GIT_SSH',
    'GIT_SSH_COMMAND',
    'GIT_EXEC_PATH',
    'GIT_EXTERNAL_DIFF',
    'GIT_PROXY_COMMAND',
    'DBUS_*',
    'PUPPETEER_*',
    'PLAYWRIGHT_*',
  ]),
  family('git-config', 'wall', 'picks git configuration or a repository, whose config and hooks run programs', [
    'GIT_CONFIG*',
    'GIT_DIR',
    'GIT_COMMON_DIR',
    'GIT_TEMPLATE_DIR',
  ]),
  // ---- The blocklist: the child would be redirected; an exact `allowedEnv` entry opens it. ----
  family('daemon', 'blocked', 'redirects a daemon or credentials', [
    'DOCKER_*',
    'KUBECONFIG',
    'GIT_*',
    'SSH_*',
    'AWS_*',
    'GOOGLE_APPLICATION_CREDENTIALS',
    'CLOUDSDK_*',
    'AZURE_CONFIG_DIR',
    'NETRC',
    'GNUPGHOME',
  ]),
  family('network', 'blocked', 'routes traffic or name resolution, or changes TLS trust', [
    '*_PROXY',
    'SSL_CERT_*',
    'SSLKEYLOGFILE',
    'CURL_CA_BUNDLE',
    'REQUESTS_CA_BUNDLE',
    'CURL_HOME',
    'WGETRC',
    'HOSTALIASES',
    'RES_OPTIONS',
    'LOCALDOMAIN',
  ]),
  family('libc', 'blocked', 'tunes the C library (allocator, tunables, locale and message files)', ['MALLOC_*', 'GLIBC_TUNABLES', 'LOCPATH', 'NLSPATH']),
  family('terminal', 'blocked', 'configures a terminal program (less options, terminal descriptions)', ['LESS*', 'TERMINFO*', 'TERMCAP']),
  family('frame', 'blocked', "sets the process's own frame (home, temporary and config folders, time zone, locale)", [
    'HOME',
    'TMPDIR',
    'XDG_*',
    'TZ',
    'LANG',
    'LC_*',
  ]),
  family('platform', 'blocked', 'belongs to the platform or the gateway', ['FLY_*', 'WARDEN_*']),
]);

const WORD = /^[A-Z0-9]+$/;

/** One pattern as a test on an upper-cased name. */
export function patternMatches(pattern: string, name: string): boolean {
  if (pattern.endsWith('+')) {
    const prefix = pattern.slice(0, -1);
    return name.startsWith(prefix) && WORD.test(name.slice(prefix.length));
  }
  if (pattern.endsWith('*')) return name.startsWith(pattern.slice(0, -1));
  if (pattern.startsWith('*')) return name.endsWith(pattern.slice(1));
  return name === pattern;
}

const WALL = ENV_FAMILIES.filter((f) => f.tier === 'wall');
const BLOCKED = ENV_FAMILIES.filter((f) => f.tier === 'blocked');
const inFamily = (f: EnvFamily, name: string) => f.patterns.some((p) => patternMatches(p, name));

/** The family that refuses `name` (compared upper-cased; the wall first), if any. */
export function envFamilyOf(name: string): EnvFamily | undefined {
  const upper = name.toUpperCase();
  return WALL.find((f) => inFamily(f, upper)) ?? BLOCKED.find((f) => inFamily(f, upper));
}

/** True when a client may not set `name` without an exact `allowedEnv` entry (or at all). */
export function isBlockedEnvName(name: string): boolean {
  return envFamilyOf(name) !== undefined;
}

/** True when no client may ever set `name`, whatever the entry says. */
export function isWallEnvName(name: string): boolean {
  return envFamilyOf(name)?.tier === 'wall';
}

/**
 * The wall family an `allowedEnv` entry names, if any: an exact name in the wall, or a
 * prefix entry (`NODE_*`, `LD_PRE*`) every name of which the wall covers. Used when the
 * whitelist loads, so an admin learns at once that such an entry would never open anything.
 */
export function wallFamilyOfAllowedEntry(entry: string): EnvFamily | undefined {
  if (!entry.endsWith('*')) return isWallEnvName(entry) ? envFamilyOf(entry) : undefined;
  const prefix = entry.slice(0, -1);
  return WALL.find((f) => f.patterns.some((p) => p.endsWith('*') && !p.startsWith('*') && prefix.startsWith(p.slice(0, -1))));
}
