/**
 * parsePolicy's error messages (each names the bad key or the file) and PolicyStore on a
 * real temporary file: hot reload, a bad edit keeping the last good policy, close().
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from '@jest/globals';
import { mkdtempSync, rmSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import winston from 'winston';
import Transport from 'winston-transport';
import { PolicyError, type CompiledPolicy } from '../../../src/policy/compile.js';
import { PolicyStore, parsePolicy } from '../../../src/policy/store.js';

function parseError(doc: unknown, source = 'policy.json'): PolicyError {
  try {
    parsePolicy(typeof doc === 'string' ? doc : JSON.stringify(doc), source);
  } catch (error) {
    expect(error).toBeInstanceOf(PolicyError);
    return error as PolicyError;
  }
  throw new Error('parsePolicy accepted the policy');
}

describe('parsePolicy', () => {
  it('returns a compiled policy with name, version as a string, mode and audit option', () => {
    const p = parsePolicy(JSON.stringify({ name: 'p', version: 3, mode: 'shadow', audit: { includeArguments: true } }), 'p.json');
    expect(p).toMatchObject({ name: 'p', version: '3', mode: 'shadow', includeArguments: true });
    const q = parsePolicy('{"name":"q"}', 'q.json');
    expect(q).toMatchObject({ name: 'q', version: undefined, mode: 'enforce', includeArguments: false });
    expect(q.redaction?.detectors.length).toBeGreaterThan(0);
    expect(parsePolicy('{"name":"r","redaction":{"enabled":false}}', 'r.json').redaction).toBeUndefined();
  });

  it('accepts the $schema key editors use', () => {
    expect(parsePolicy('{"$schema":"./schema/policy.schema.json","name":"x"}', 'p.json').name).toBe('x');
  });

  it('names the file on invalid JSON', () => {
    const e = parseError('{"name": "x",', '/etc/warden/policy.json');
    expect(e.message).toMatch(/^\/etc\/warden\/policy\.json: invalid JSON: /);
  });

  it('names the role section and the key of an unknown field', () => {
    const e = parseError({ name: 'x', roles: { user: { tool: { allow: ['a'] } } } });
    expect(e.message).toMatch(/^policy\.json: roles\.user: /);
    expect(e.message).toContain('"tool"');
  });

  it('names an unknown field deep in a command role section', () => {
    const e = parseError({ name: 'x', commands: { sms: { roles: { user: { tools: { allow: [], block: [] } } } } } });
    expect(e.message).toMatch(/^policy\.json: commands\.sms\.roles\.user\.tools: /);
    expect(e.message).toContain('"block"');
  });

  it('names an unknown top-level field', () => {
    expect(parseError({ name: 'x', tool: {} }).message).toMatch(/^policy\.json: \(top level\): .*"tool"/);
  });

  it('names the argument of a bad pattern regex', () => {
    const e = parseError({ name: 'x', arguments: { x: { args: { y: { pattern: '(' } } } } });
    expect(e.message).toContain('arguments["x"].args["y"].pattern: invalid regex');
    expect(e.message).toMatch(/^policy\.json: /);
  });

  it('names the section and argument of a bad notPattern regex', () => {
    const e = parseError({ name: 'x', commands: { sms: { roles: { user: { arguments: { send: { args: { body: { notPattern: '[' } } } } } } } } });
    expect(e.message).toContain('commands["sms"].roles.user.arguments["send"].args["body"].notPattern: invalid regex');
  });

  it('compiles patterns with the unicode flag, so a lone `\\-` escape is rejected', () => {
    expect(parseError({ name: 'x', roles: { u: { arguments: { t: { args: { a: { pattern: '\\-' } } } } } } }).message).toContain(
      'roles.u.arguments["t"].args["a"].pattern',
    );
  });

  it('names `default` when it has the wrong type or value', () => {
    expect(parseError({ name: 'x', default: 'maybe' }).message).toMatch(/^policy\.json: default: /);
    expect(parseError({ name: 'x', default: true }).message).toMatch(/^policy\.json: default: /);
    expect(parseError({ name: 'x', roles: { user: { default: 1 } } }).message).toMatch(/^policy\.json: roles\.user\.default: /);
  });

  it('names the index of a bad glob', () => {
    expect(parseError({ name: 'x', tools: { allow: ['a', ''] } }).message).toMatch(/^policy\.json: tools\.allow\[1\]: /);
    expect(parseError({ name: 'x', resources: { deny: ['x'.repeat(257)] } }).message).toMatch(/^policy\.json: resources\.deny\[0\]: /);
  });

  it('names an empty name, a bad mode and a bad rate limit', () => {
    expect(parseError({ name: '' }).message).toMatch(/^policy\.json: name: /);
    expect(parseError({ name: 'x', mode: 'audit' }).message).toMatch(/^policy\.json: mode: /);
    expect(parseError({ name: 'x', roles: { user: { rateLimits: { t: { calls: 0, perSeconds: 1 } } } } }).message).toMatch(
      /^policy\.json: roles\.user\.rateLimits\.t\.calls: /,
    );
    expect(parseError({ name: 'x', rateLimits: { t: { calls: 1, perSeconds: 1, per: 'session' } } }).message).toMatch(/rateLimits\.t\.per: /);
  });

  it('names a bad role name and a bad argument rule type', () => {
    expect(parseError({ name: 'x', roles: { 'bad role': {} } }).message).toMatch(/^policy\.json: roles/);
    expect(parseError({ name: 'x', arguments: { t: { args: { a: { type: 'float' } } } } }).message).toMatch(/arguments\.t\.args\.a\.type: /);
  });

  it('names a bad redaction pattern', () => {
    expect(parseError({ name: 'x', redaction: { patterns: [{ name: 'a', regex: '(' }] } }).message).toMatch(/^policy\.json: redaction\.patterns: /);
    expect(parseError({ name: 'x', redaction: { patterns: [{ name: 'a', regex: 'a', flags: 'y' }] } }).message).toMatch(
      /^policy\.json: redaction\.patterns\[0\]\.flags: /,
    );
  });

  it('rejects a non-object document', () => {
    expect(parseError('[]').message).toMatch(/^policy\.json: \(top level\): /);
    expect(parseError('null').message).toMatch(/^policy\.json: \(top level\): /);
  });
});

/** Log entries captured from a real winston logger. */
class ArrayTransport extends Transport {
  readonly entries: { level: string; message: string; [key: string]: unknown }[] = [];
  override log(info: { level: string; message: string }, next: () => void): void {
    this.entries.push({ ...info });
    next();
  }
}

function captureLogger(): { logger: winston.Logger; entries: ArrayTransport['entries'] } {
  const transport = new ArrayTransport();
  return { logger: winston.createLogger({ level: 'debug', transports: [transport] }), entries: transport.entries };
}

const tick = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Writes `text` to `path` until `done()` holds. A stat watcher takes its baseline
 * asynchronously, so an edit made right after watching can land before the baseline and
 * never count as a change; rewriting (with alternating trailing whitespace, so the size
 * changes) makes the edit visible to the next poll.
 */
async function editUntil(path: string, text: string, done: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let pad = 0;
  let lastWrite = 0;
  while (!done()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    if (Date.now() - lastWrite >= 200) {
      pad = (pad % 2) + 1;
      writeFileSync(path, text + ' '.repeat(pad));
      lastWrite = Date.now();
    }
    await tick(5);
  }
}

/** Resolves on the next stat poll of `path` that sees a change (a listener of our own). */
function nextChange(path: string, intervalMs: number): { readonly seen: () => boolean } {
  let seen = false;
  const listener = () => {
    unwatchFile(path, listener);
    seen = true;
  };
  watchFile(path, { interval: intervalMs, persistent: false }, listener);
  return { seen: () => seen };
}

const policyText = (name: string, extra: Record<string, unknown> = {}) => `${JSON.stringify({ name, ...extra }, null, 2)}\n`;

describe('PolicyStore', () => {
  let dir: string;
  let seq = 0;
  const stores: PolicyStore[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'warden-policy-'));
  });
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
  });
  afterAll(() => {
    rmSync(dir, { recursive: true, force: true });
  });

  function file(text: string): string {
    const path = join(dir, `policy-${++seq}.json`);
    writeFileSync(path, text);
    return path;
  }

  function load(path: string, logger: winston.Logger, pollMs = 50): PolicyStore {
    const store = PolicyStore.load(path, { logger, pollMs });
    stores.push(store);
    return store;
  }

  it('load() reads and compiles the file', () => {
    const { logger } = captureLogger();
    const store = load(file(policyText('first', { default: 'deny' })), logger);
    expect(store.current.name).toBe('first');
    expect(store.current.chain('u', 'c')[0]?.default).toBe('deny');
  });

  it('load() of a missing file throws a PolicyError naming the path', () => {
    const { logger } = captureLogger();
    const path = join(dir, 'missing.json');
    expect(() => PolicyStore.load(path, { logger })).toThrow(PolicyError);
    expect(() => PolicyStore.load(path, { logger })).toThrow(`${path}: cannot read file`);
  });

  it('load() of an invalid file throws naming the path and the key', () => {
    const { logger } = captureLogger();
    const path = file(policyText('bad', { default: 'sometimes' }));
    expect(() => PolicyStore.load(path, { logger })).toThrow(`${path}: default: `);
  });

  it('reload() swaps in a good edit, fires onReload and logs it', () => {
    const { logger, entries } = captureLogger();
    const path = file(policyText('v1'));
    const store = load(path, logger);
    const seen: CompiledPolicy[] = [];
    store.onReload = (p) => seen.push(p);
    writeFileSync(path, policyText('v2', { version: 2, mode: 'shadow' }));
    expect(store.reload()).toBe(true);
    expect(store.current.name).toBe('v2');
    expect(seen).toEqual([store.current]);
    expect(entries).toContainEqual(expect.objectContaining({ level: 'info', message: 'policy reloaded', policy: 'v2', version: '2', mode: 'shadow' }));
  });

  it('reload() of a bad edit keeps the last good policy and logs why', () => {
    const { logger, entries } = captureLogger();
    const path = file(policyText('good'));
    const store = load(path, logger);
    const before = store.current;
    let reloads = 0;
    store.onReload = () => (reloads += 1);
    writeFileSync(path, policyText('bad', { roles: { user: { arguments: { t: { args: { a: { pattern: '(' } } } } } } }));
    expect(store.reload()).toBe(false);
    expect(store.current).toBe(before);
    expect(reloads).toBe(0);
    const error = entries.find((e) => e.level === 'error');
    expect(error).toMatchObject({ message: 'policy reload rejected; keeping the last good policy', policy: 'good' });
    expect(String(error?.['error'])).toContain(`${path}: roles.user.arguments["t"].args["a"].pattern: invalid regex`);
  });

  it('load() refuses a commands key that is not in the whitelist, naming it and the nearest key', () => {
    const { logger } = captureLogger();
    const path = file(policyText('typo', { commands: { 'sms-sever': { default: 'deny' } } }));
    const commandKeys = ['mcp-server-everything', 'sms-server'];
    expect(() => PolicyStore.load(path, { logger, commandKeys })).toThrow(PolicyError);
    expect(() => PolicyStore.load(path, { logger, commandKeys })).toThrow(
      `${path}: commands["sms-sever"]: "sms-sever" is not a key of the whitelist, so these rules would apply to nothing; did you mean "sms-server"? (the whitelist keys: "mcp-server-everything", "sms-server")`,
    );
    // Keys are matched exactly, as the gateway routes them.
    expect(() => PolicyStore.load(file(policyText('case', { commands: { 'SMS-SERVER': {} } })), { logger, commandKeys })).toThrow('did you mean "sms-server"?');
    // Known keys load; without the whitelist keys nothing is checked.
    expect(load(file(policyText('ok', { commands: { 'sms-server': {} } })), logger).current.name).toBe('ok');
    expect(PolicyStore.load(path, { logger }).current.name).toBe('typo');
  });

  it('reload() of an edit naming an unknown command key keeps the last good policy and logs why', () => {
    const { logger, entries } = captureLogger();
    const path = file(policyText('good', { commands: { sms: { default: 'deny' } } }));
    const store = PolicyStore.load(path, { logger, pollMs: 50, commandKeys: ['sms', 'everything'] });
    stores.push(store);
    const before = store.current;
    writeFileSync(path, policyText('typo', { commands: { smss: { default: 'allow' } } }));
    expect(store.reload()).toBe(false);
    expect(store.current).toBe(before);
    const error = entries.find((e) => e.level === 'error');
    expect(error).toMatchObject({ message: 'policy reload rejected; keeping the last good policy', policy: 'good' });
    expect(String(error?.['error'])).toContain(`${path}: commands.smss: "smss" is not a key of the whitelist`);
    expect(String(error?.['error'])).toContain('did you mean "sms"?');
  });

  it('reload() of a deleted file keeps the last good policy', () => {
    const { logger, entries } = captureLogger();
    const path = file(policyText('kept'));
    const store = load(path, logger);
    rmSync(path);
    expect(store.reload()).toBe(false);
    expect(store.current.name).toBe('kept');
    expect(entries.some((e) => e.level === 'error' && String(e['error']).includes('ENOENT'))).toBe(true);
  });

  it('watch() picks up a good edit, then keeps it through a bad one, then takes the next good one', async () => {
    const { logger, entries } = captureLogger();
    const path = file(policyText('v1'));
    const store = load(path, logger);
    const names: string[] = [];
    store.onReload = (p) => names.push(p.name);
    store.watch();

    await editUntil(path, policyText('v2-longer'), () => store.current.name === 'v2-longer', 'the good edit');
    expect(names[0]).toBe('v2-longer');

    await editUntil(path, '{"name": "v3", "default": ', () => entries.some((e) => e.level === 'error'), 'the rejected edit to be logged');
    expect(store.current.name).toBe('v2-longer');
    expect(String(entries.find((e) => e.level === 'error')?.['error'])).toContain(`${path}: invalid JSON`);

    await editUntil(path, policyText('v4-after-the-bad-one', { default: 'deny' }), () => store.current.name === 'v4-after-the-bad-one', 'the recovery edit');
    expect(new Set(names)).toEqual(new Set(['v2-longer', 'v4-after-the-bad-one']));
    expect(names.at(-1)).toBe('v4-after-the-bad-one');
    expect(store.current.chain('u', 'c')[0]?.default).toBe('deny');
  });

  it('watch() twice registers one listener: one onReload per change', async () => {
    const { logger } = captureLogger();
    const path = file(policyText('a'));
    const store = load(path, logger);
    let reloads = 0;
    store.onReload = () => (reloads += 1);
    store.watch();
    store.watch();
    await editUntil(path, policyText('bb'), () => reloads > 0, 'the edit');
    // every listener on a path is called in the same stat event, so a duplicate would have run by now
    expect(reloads).toBe(1);
    expect(store.current.name).toBe('bb');
  });

  it('close() stops watching, and is idempotent', async () => {
    const { logger } = captureLogger();
    const path = file(policyText('before-close'));
    const store = load(path, logger);
    store.watch();
    store.close();
    store.close();
    // Node shares one stat watcher per path: had the store's listener survived close(),
    // it would run in the same change event that resolves ours.
    const probe = nextChange(path, 50);
    await editUntil(path, policyText('after-close-edit'), probe.seen, 'our own watcher to see the edit');
    expect(store.current.name).toBe('before-close');
    // watching again works after close
    store.watch();
    await editUntil(path, policyText('watched-again-edit'), () => store.current.name === 'watched-again-edit', 're-watch');
  });

  it('close() without watch() is a no-op', () => {
    const { logger } = captureLogger();
    const store = load(file(policyText('x')), logger);
    expect(() => store.close()).not.toThrow();
    expect(store.current.name).toBe('x');
  });
});
