/**
 * Per-session environment variables (`ENV_<NAME>` headers) end to end: the SDK client,
 * over both transports, through the gateway to the env-server fixture, whose `env` tool
 * returns the child's process.env as JSON. The child's env is built from scratch (PATH,
 * HOME, LANG, the entry's fixed env, then the accepted headers), so the exact key set is
 * asserted, and nothing of the gateway's own environment or secret may reach it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { homedir } from 'node:os';
import { dirname } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { defaultChildEnvBase } from '../../src/commands/env.js';
import { connectClient, fixtureEntry, initializeBody, MCP_ACCEPT, startGateway, type Kind, type TestGateway } from '../helpers/gateway.js';
import { descendantsOf, waitFor, waitForNoDescendants } from '../helpers/procs.js';

/** Fixed env: a plain variable, a blocked name (the admin may set it), and LANG over the base. */
const FIXED = 'env-fixed';
const FIXED_ENV = { FIXED_ONE: 'fixed-one-value', PYTHONPATH: '/admin/python', LANG: 'en_US.UTF-8' };
/** allowedEnv with an exact name and a prefix. */
const ALLOWED = 'env-allowed';
/** allowedEnv: [] - no client variable at all. */
const NONE = 'env-none';
/** allowedEnv opens the blocklisted TZ by its exact name; the GIT_* prefix opens no blocklisted name. */
const OPENED = 'env-opened';

const COMMANDS = {
  [FIXED]: fixtureEntry('env-server.mjs', { env: FIXED_ENV }),
  [ALLOWED]: fixtureEntry('env-server.mjs', { allowedEnv: ['API_KEY', 'MY_*'] }),
  [NONE]: fixtureEntry('env-server.mjs', { allowedEnv: [] }),
  [OPENED]: fixtureEntry('env-server.mjs', { allowedEnv: ['TZ', 'GIT_*'] }),
};

/** Set in this process before the gateway starts: none of it may reach a child. */
const PARENT_ENV = {
  WARDEN_SECRET: `warden-env-secret-${randomUUID()}`,
  WARDEN_TEST_MARKER: `warden-marker-${randomUUID()}`,
};
const GATEWAY_SECRET = `gateway-secret-${randomUUID()}`;

/** Every env value a test sends; none may ever appear in the gateway's logs. */
const sent = new Set<string>();
/** A unique value, remembered in `sent`. */
function value(label: string): string {
  const v = `${label}-${randomUUID()}`;
  sent.add(v);
  return v;
}

let gw: TestGateway;
const saved: Record<string, string | undefined> = {};

beforeAll(async () => {
  for (const [name, v] of Object.entries(PARENT_ENV)) {
    saved[name] = process.env[name];
    process.env[name] = v;
  }
  gw = await startGateway(COMMANDS, { secret: GATEWAY_SECRET });
});
afterAll(async () => {
  await gw?.close();
  for (const [name, v] of Object.entries(saved)) {
    if (v === undefined) delete process.env[name];
    else process.env[name] = v;
  }
});
afterEach(async () => {
  await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
});

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

interface OpenSession {
  readonly client: Client;
  /** The child's process.env, from the env-server's `env` tool. */
  env(): Promise<Record<string, string>>;
  close(): Promise<void>;
}

async function readEnv(client: Client): Promise<Record<string, string>> {
  const result = await client.callTool({ name: 'env', arguments: {} });
  const content = result.content as Array<{ type: string; text: string }>;
  expect(content).toHaveLength(1);
  return JSON.parse(content[0]!.text) as Record<string, string>;
}

async function open(target: TestGateway, key: string, kind: Kind, headers: Record<string, string> = {}): Promise<OpenSession> {
  const { client, transport } = await connectClient(target, key, kind, headers);
  return {
    client,
    env: () => readEnv(client),
    close: async () => {
      if (transport instanceof StreamableHTTPClientTransport) await transport.terminateSession();
      await client.close();
    },
  };
}

/** Opens a session, reads the child's env, closes the session. */
async function childEnv(key: string, kind: Kind, headers: Record<string, string> = {}): Promise<Record<string, string>> {
  const session = await open(gw, key, kind, headers);
  try {
    return await session.env();
  } finally {
    await session.close();
  }
}

/** Pids of the children the gateway logged as serving a session, in order. */
function sessionPids(target: TestGateway): number[] {
  return target.logs
    .map((line) => JSON.parse(line) as { message?: string; pid?: number })
    .filter((entry) => entry.message === 'session opened')
    .map((entry) => entry.pid!);
}

function spawnCount(target: TestGateway): number {
  return target.logs.filter((line) => (JSON.parse(line) as { message?: string }).message === 'child spawned').length;
}

/** The request that would open a session, sent raw so the rejection body can be read. */
async function attempt(key: string, kind: Kind, headers: Record<string, string>, target: TestGateway = gw) {
  const controller = new AbortController();
  const res =
    kind === 'sse'
      ? await fetch(target.url(key, 'sse'), { headers: target.headers(headers), signal: controller.signal })
      : await fetch(target.url(key, 'mcp'), {
          method: 'POST',
          headers: target.headers({ ...MCP_ACCEPT, ...headers }),
          body: JSON.stringify(initializeBody()),
          signal: controller.signal,
        });
  if (res.status === 200) {
    // Unexpectedly accepted: end what was opened so no child outlives the test.
    controller.abort();
    const id = res.headers.get('mcp-session-id');
    if (id) await fetch(target.url(key, 'mcp'), { method: 'DELETE', headers: target.headers({ 'Mcp-Session-Id': id }) });
    return { status: 200, text: '' };
  }
  return { status: res.status, text: await res.text() };
}

/**
 * Asserts a 400 env_rejected naming `variable`, that nothing was spawned and the values
 * leaked nowhere. Returns the JSON-RPC error.
 */
async function expectEnvRejected(
  key: string,
  kind: Kind,
  headers: Record<string, string>,
  variable: string,
  reason: string,
  target: TestGateway = gw,
): Promise<{ message: string; data: Record<string, unknown> }> {
  const before = spawnCount(target);
  const reply = await attempt(key, kind, headers, target);
  expect(reply.status).toBe(400);
  const body = JSON.parse(reply.text) as { error: { message: string; data: Record<string, unknown> } };
  expect(body).toMatchObject({ jsonrpc: '2.0', id: null, error: { data: { code: 'env_rejected', variable, reason } } });
  for (const v of Object.values(headers)) expect(reply.text).not.toContain(v);
  expect(spawnCount(target)).toBe(before);
  expect(descendantsOf(process.pid)).toEqual([]);
  expect(target.gateway.processes.liveCount).toBe(0);
  return body.error;
}

function expectNotLogged(values: Iterable<string>) {
  for (const v of values) expect(gw.logs.filter((line) => line.includes(v))).toEqual([]);
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------

describe.each<Kind>(['sse', 'mcp'])('over %s', (kind) => {
  it('accepted ENV_* headers arrive, names upper-cased, values byte-exact', async () => {
    const apiKey = value('abc');
    const lower = value('lower');
    const mixed = value('mixed');
    const tabbed = `${value('tab')}\tinner space`;
    const big = value('big');
    const longest = big + 'x'.repeat(4096 - big.length); // exactly the 4096-byte limit
    const env = await childEnv(FIXED, kind, {
      ENV_API_KEY: apiKey,
      env_lower_name: lower,
      Env_Mixed_Case: mixed,
      ENV_TABBED: tabbed,
      ENV_LONGEST: longest,
    });
    expect(env).toMatchObject({ API_KEY: apiKey, LOWER_NAME: lower, MIXED_CASE: mixed, TABBED: tabbed, LONGEST: longest });
    expect(Object.keys(env)).not.toContain('lower_name');
    expect(Object.keys(env)).not.toContain('Mixed_Case');
    expectNotLogged([apiKey, lower, mixed, tabbed, big]);
  });

  // BUG (src/commands/env.ts extractEnvHeaders): Node decodes header bytes as latin1, and
  // the string goes to the child as UTF-8, so the UTF-8 bytes of "é€" (c3a9 e282ac) arrive
  // as "Ã©â\u0082¬" (c383c2a9 c3a2c282c2ac): every non-ASCII value is corrupted, and counts
  // double against the 4096-byte limit. Fix: Buffer.from(value, 'latin1') to get the bytes
  // back, decode with new TextDecoder('utf-8', { fatal: true }) (invalid UTF-8 -> 'invalid
  // value'), then check the limit on those bytes. Cannot pass without changing src/.
  it('a UTF-8 header value arrives as the same text (bytes passed through unchanged)', async () => {
    const text = `é€-${randomUUID()}`;
    sent.add(text);
    const onTheWire = Buffer.from(text, 'utf8').toString('latin1'); // fetch sends each char as one byte
    const env = await childEnv(FIXED, kind, { ENV_UTF8_VALUE: onTheWire });
    expect(env.UTF8_VALUE).toBe(text);
  });

  it('the child env is built from scratch: exactly PATH, HOME, LANG, the fixed env and the accepted vars', async () => {
    const apiKey = value('key');
    // `ENV-DASHED` is not an env header (the prefix is `env_`): ignored, neither set nor refused.
    const env = await childEnv(FIXED, kind, { ENV_API_KEY: apiKey, 'ENV-DASHED': value('dashed') });
    expect(Object.keys(env).sort()).toEqual(['API_KEY', 'FIXED_ONE', 'HOME', 'LANG', 'PATH', 'PYTHONPATH']);
    expect(env.API_KEY).toBe(apiKey);
    expect(env.FIXED_ONE).toBe(FIXED_ENV.FIXED_ONE);
    expect(env.PYTHONPATH).toBe(FIXED_ENV.PYTHONPATH); // the admin may set a name clients may not
    expect(env.LANG).toBe('en_US.UTF-8'); // the admin's fixed env overrides the base
    expect(env.HOME).toBe(homedir());
    expect(env.PATH).toBe(defaultChildEnvBase().path);
    expect(env.PATH!.split(':')).toContain(dirname(process.execPath));

    // Nothing of the gateway's process: not its secret, not WARDEN_*, not Authorization.
    expect(process.env.WARDEN_SECRET).toBe(PARENT_ENV.WARDEN_SECRET); // the trap is set
    const values = Object.values(env).join('\n');
    for (const secret of [GATEWAY_SECRET, PARENT_ENV.WARDEN_SECRET, PARENT_ENV.WARDEN_TEST_MARKER]) {
      expect(values).not.toContain(secret);
    }
    expect(values).not.toMatch(/Bearer/i);
    expect(Object.keys(env).filter((name) => /^WARDEN_|AUTHORIZATION/i.test(name))).toEqual([]);
  });

  it('without fixed env or headers the child gets only PATH, HOME and LANG=C.UTF-8', async () => {
    const env = await childEnv(ALLOWED, kind);
    expect(env).toEqual({ PATH: defaultChildEnvBase().path, HOME: homedir(), LANG: 'C.UTF-8' });
  });

  it('allowedEnv admits its exact names and MY_* prefix; anything else is 400 and spawns nothing', async () => {
    const apiKey = value('api');
    const mine = value('mine');
    const env = await childEnv(ALLOWED, kind, { ENV_API_KEY: apiKey, ENV_MY_THING: mine });
    expect(env).toEqual({ PATH: defaultChildEnvBase().path, HOME: homedir(), LANG: 'C.UTF-8', API_KEY: apiKey, MY_THING: mine });
    await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });

    await expectEnvRejected(ALLOWED, kind, { ENV_OTHER: value('other') }, 'OTHER', 'not allowed for this command');
    // The prefix is literal: MY_* does not admit MYTHING or MY.
    await expectEnvRejected(ALLOWED, kind, { ENV_MYTHING: value('mything') }, 'MYTHING', 'not allowed for this command');
    await expectEnvRejected(ALLOWED, kind, { ENV_MY: value('my') }, 'MY', 'not allowed for this command');
    // An allowed name does not carry a disallowed one through with it.
    await expectEnvRejected(ALLOWED, kind, { ENV_API_KEY: value('api'), ENV_API_KEY2: value('api2') }, 'API_KEY2', 'not allowed for this command');
  });

  it('allowedEnv: [] admits no variable at all', async () => {
    await expectEnvRejected(NONE, kind, { ENV_ANYTHING: value('anything') }, 'ANYTHING', 'not allowed for this command');
    const env = await childEnv(NONE, kind);
    expect(Object.keys(env).sort()).toEqual(['HOME', 'LANG', 'PATH']);
  });

  it('two concurrent sessions with different ENV_TOKEN values each see only their own', async () => {
    const tokenA = value('token-a');
    const tokenB = value('token-b');
    const [a, b] = await Promise.all([open(gw, FIXED, kind, { ENV_TOKEN: tokenA }), open(gw, FIXED, kind, { ENV_TOKEN: tokenB })]);
    try {
      expect(gw.gateway.processes.liveCount).toBe(2);
      const [envA, envB] = await Promise.all([a.env(), b.env()]);
      expect(envA.TOKEN).toBe(tokenA);
      expect(envB.TOKEN).toBe(tokenB);
      expect(Object.values(envA).join('\n')).not.toContain(tokenB);
      expect(Object.values(envB).join('\n')).not.toContain(tokenA);
      // and again, interleaved, after both are warm
      expect((await b.env()).TOKEN).toBe(tokenB);
      expect((await a.env()).TOKEN).toBe(tokenA);
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
    expectNotLogged([tokenA, tokenB]);
  });

  it('a header may not change a variable the whitelist entry fixes', async () => {
    // The admin's value for this command wins: naming it in a header is refused (400), and a
    // name of the wall is refused as never accepted.
    await expectEnvRejected(FIXED, kind, { ENV_FIXED_ONE: value('client-override') }, 'FIXED_ONE', 'fixed by the whitelist entry');
    await expectEnvRejected(FIXED, kind, { ENV_LANG: value('client-lang') }, 'LANG', 'fixed by the whitelist entry');
    await expectEnvRejected(FIXED, kind, { ENV_PYTHONPATH: value('client-pythonpath') }, 'PYTHONPATH', 'never accepted');
    const env = await childEnv(FIXED, kind, {});
    expect(env.FIXED_ONE).toBe(FIXED_ENV.FIXED_ONE);
    expect(env.LANG).toBe(FIXED_ENV.LANG);
  });

  it('a name of a blocked family is 400 naming the variable, its family and the setting; the value never appears', async () => {
    const error = await expectEnvRejected(FIXED, kind, { ENV_DOCKER_HOST: value('tcp://attacker.example:2375') }, 'DOCKER_HOST', 'blocked');
    expect(error.data).toEqual({ code: 'env_rejected', variable: 'DOCKER_HOST', reason: 'blocked', setting: 'allowedEnv', family: 'daemon' });
    expect(error.message).toBe(
      'environment variable DOCKER_HOST is not accepted: blocked (a family that redirects a daemon or credentials); ' +
        'an admin may open this exact name with "allowedEnv" on the entry',
    );
    // Names are upper-cased before the families are compared: a lower-case suffix match too.
    await expectEnvRejected(FIXED, kind, { env_https_proxy: value('http://attacker.example') }, 'HTTPS_PROXY', 'blocked');
  });

  it('a name of the wall is 400 "never accepted", with no setting that would open it', async () => {
    const error = await expectEnvRejected(FIXED, kind, { ENV_GIT_SSH_COMMAND: value('sh -c id') }, 'GIT_SSH_COMMAND', 'never accepted');
    expect(error.data).toMatchObject({ setting: 'none', family: 'program' });
    expect(error.message).toBe('environment variable GIT_SSH_COMMAND is not accepted: never accepted (it makes the server load or run code)');
  });

  it('a hyphen in the name is 400 suggesting underscores', async () => {
    const error = await expectEnvRejected(FIXED, kind, { 'ENV_MY-VAR': value('hyphen') }, 'MY?VAR', 'invalid name');
    expect(error.data).toMatchObject({ suggestion: 'ENV_MY_VAR' });
    expect(error.message).toContain('use ENV_MY_VAR');
  });

  it('an exact allowedEnv entry opens TZ and it reaches the child; the GIT_* prefix opens no blocklisted name', async () => {
    const env = await childEnv(OPENED, kind, { ENV_TZ: 'Pacific/Chatham' });
    expect(env).toEqual({ PATH: defaultChildEnvBase().path, HOME: homedir(), LANG: 'C.UTF-8', TZ: 'Pacific/Chatham' });
    await waitForNoDescendants(process.pid, { timeoutMs: 10_000 });
    const error = await expectEnvRejected(OPENED, kind, { ENV_GIT_AUTHOR_NAME: value('author') }, 'GIT_AUTHOR_NAME', 'blocked');
    expect(error.data).toMatchObject({ setting: 'allowedEnv', family: 'daemon' });
  });
});

describe('--env-mode allowlist', () => {
  const PLAIN = 'env-plain';
  let strict: TestGateway;
  beforeAll(async () => {
    strict = await startGateway({ [PLAIN]: fixtureEntry('env-server.mjs'), [ALLOWED]: COMMANDS[ALLOWED] }, { secret: GATEWAY_SECRET, envMode: 'allowlist' });
  });
  afterAll(async () => {
    await strict?.close();
  });

  it.each<Kind>(['sse', 'mcp'])('%s: an entry without allowedEnv takes no ENV_* header; one that lists names takes those', async (kind) => {
    const error = await expectEnvRejected(PLAIN, kind, { ENV_API_KEY: value('strict-api') }, 'API_KEY', 'not allowed for this command', strict);
    expect(error.data).toEqual({
      code: 'env_rejected',
      variable: 'API_KEY',
      reason: 'not allowed for this command',
      setting: 'allowedEnv',
      envMode: 'allowlist',
    });
    expect(error.message).toBe(
      'environment variable API_KEY is not accepted: not allowed for this command (--env-mode allowlist: the entry must list it in "allowedEnv")',
    );

    const plain = await open(strict, PLAIN, kind);
    try {
      expect(await plain.env()).toEqual({ PATH: defaultChildEnvBase().path, HOME: homedir(), LANG: 'C.UTF-8' });
    } finally {
      await plain.close();
    }
    const apiKey = value('strict-listed');
    const listed = await open(strict, ALLOWED, kind, { ENV_API_KEY: apiKey });
    try {
      expect((await listed.env()).API_KEY).toBe(apiKey);
    } finally {
      await listed.close();
    }
    expect(strict.logs.filter((line) => [...sent].some((v) => line.includes(v)))).toEqual([]);
  });
});

describe('session boundaries', () => {
  it('ENV_* headers on later requests of a Streamable session are ignored: the child keeps its env', async () => {
    const first = value('first');
    const session = await open(gw, FIXED, 'mcp', { ENV_TOKEN: first });
    const sessionId = gw.gateway.sessions.all()[0]!.id;
    // A second client on the same session id (the SDK skips initialize when a session id is set).
    const later = new StreamableHTTPClientTransport(gw.url(FIXED, 'mcp'), {
      sessionId,
      requestInit: { headers: gw.headers({ ENV_TOKEN: value('later'), ENV_LD_PRELOAD: value('later-ld') }) },
    });
    const second = new Client({ name: 'later', version: '1.0.0' });
    try {
      await second.connect(later);
      const env = await readEnv(second);
      expect(env.TOKEN).toBe(first);
      expect(env.LD_PRELOAD).toBeUndefined();
      expect(gw.gateway.processes.liveCount).toBe(1);
    } finally {
      await second.close();
      await session.close();
    }
  });

  it('a warm spare (started without client variables) is never handed to a session that sends some', async () => {
    const pooled = await startGateway({ [FIXED]: COMMANDS[FIXED] }, { secret: GATEWAY_SECRET, poolMin: 1 });
    try {
      const spec = pooled.gateway.registry.get(FIXED)!;
      await waitFor(() => pooled.gateway.processes.status(spec).warm === 1, { message: 'one warm spare ready' });
      expect(spawnCount(pooled)).toBe(1);
      expect(descendantsOf(process.pid)).toHaveLength(1);
      const [spare] = descendantsOf(process.pid);
      const token = value('pooled-token');
      const withEnv = await open(pooled, FIXED, 'mcp', { ENV_TOKEN: token });
      try {
        const env = await withEnv.env();
        expect(env.TOKEN).toBe(token);
        expect(spawnCount(pooled)).toBe(2); // a fresh child, not the spare
        expect(sessionPids(pooled)).toHaveLength(1);
        expect(sessionPids(pooled)[0]).not.toBe(spare);
        expect(descendantsOf(process.pid)).toContain(spare);
      } finally {
        await withEnv.close();
      }
      // control: a session without variables does get the spare, and sees no TOKEN
      const plain = await open(pooled, FIXED, 'mcp');
      try {
        expect(sessionPids(pooled)[1]).toBe(spare);
        const env = await plain.env();
        expect(env.TOKEN).toBeUndefined();
        expect(Object.keys(env).sort()).toEqual(['FIXED_ONE', 'HOME', 'LANG', 'PATH', 'PYTHONPATH']);
      } finally {
        await plain.close();
      }
      expect(pooled.logs.filter((line) => line.includes(token))).toEqual([]);
    } finally {
      await pooled.close();
    }
  });

  it('no log line of the whole run contains any env value sent', () => {
    expect(sent.size).toBeGreaterThan(20);
    expectNotLogged(sent);
  });
});
