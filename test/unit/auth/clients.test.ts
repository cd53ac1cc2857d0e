/**
 * The clients file (tokens in clear or as SHA-256 digests -> principal) and the verifier
 * that checks a presented token against every known digest and the shared secret.
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { digest, sharedSecretVerifier } from '../../../src/auth/bearer.js';
import { ClientsFileError, loadClientsFile, multiTokenVerifier } from '../../../src/auth/clients.js';

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');

const ALICE_TOKEN = 'alice-token-0123456789abcdef';
const BOB_TOKEN = 'bob-token-fedcba9876543210';
const CI_TOKEN = 'ci-token-in-clear-000000000';
const SHARED = 'the-shared-secret-value-42';

let dir: string;
let seq = 0;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'warden-clients-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

function file(content: unknown): string {
  const path = join(dir, `clients-${++seq}.json`);
  writeFileSync(path, typeof content === 'string' ? content : JSON.stringify(content));
  return path;
}

function loadError(content: unknown): { path: string; error: ClientsFileError } {
  const path = file(content);
  try {
    loadClientsFile(path);
  } catch (error) {
    expect(error).toBeInstanceOf(ClientsFileError);
    return { path, error: error as ClientsFileError };
  }
  throw new Error('loadClientsFile accepted the file');
}

describe('loadClientsFile', () => {
  it('loads a plain token as its SHA-256 digest, with a frozen principal', () => {
    const config = loadClientsFile(file({ clients: [{ id: 'ci', role: 'user', token: CI_TOKEN }] }));
    expect(config.sharedSecretRole).toBeUndefined();
    expect(config.tokens).toHaveLength(1);
    const [entry] = config.tokens;
    expect(entry?.digest.toString('hex')).toBe(sha256(CI_TOKEN));
    expect(entry?.principal).toEqual({ kind: 'client', clientId: 'ci', role: 'user' });
    expect(Object.isFrozen(entry?.principal)).toBe(true);
  });

  it('loads tokenSha256 digests, upper- or lower-case hex', () => {
    const config = loadClientsFile(
      file({
        sharedSecretRole: 'admin',
        clients: [
          { id: 'alice@example.com', role: 'admin', tokenSha256: sha256(ALICE_TOKEN) },
          { id: 'bob', role: 'user', tokenSha256: sha256(BOB_TOKEN).toUpperCase() },
        ],
      }),
    );
    expect(config.sharedSecretRole).toBe('admin');
    expect(config.tokens.map((t) => t.digest.toString('hex'))).toEqual([sha256(ALICE_TOKEN), sha256(BOB_TOKEN)]);
    expect(config.tokens.map((t) => t.principal)).toEqual([
      { kind: 'client', clientId: 'alice@example.com', role: 'admin' },
      { kind: 'client', clientId: 'bob', role: 'user' },
    ]);
  });

  it('accepts an empty client list', () => {
    expect(loadClientsFile(file({ clients: [] })).tokens).toEqual([]);
  });

  it('the committed examples/clients.json loads', () => {
    const config = loadClientsFile(fileURLToPath(new URL('../../../examples/clients.json', import.meta.url)));
    expect(config.sharedSecretRole).toBe('admin');
    expect(config.tokens.map((t) => t.principal)).toEqual([
      { kind: 'client', clientId: 'alice', role: 'admin' },
      { kind: 'client', clientId: 'sms-app', role: 'user' },
    ]);
  });

  it('both token and tokenSha256 -> an error naming clients[i]', () => {
    const { path, error } = loadError({
      clients: [
        { id: 'ok', role: 'user', token: CI_TOKEN },
        { id: 'both', role: 'user', token: ALICE_TOKEN, tokenSha256: sha256(ALICE_TOKEN) },
      ],
    });
    expect(error.message).toBe(`${path}: clients[1]: give exactly one of token or tokenSha256`);
  });

  it('neither token nor tokenSha256 -> an error naming clients[i]', () => {
    const { path, error } = loadError({ clients: [{ id: 'none', role: 'user' }] });
    expect(error.message).toBe(`${path}: clients[0]: give exactly one of token or tokenSha256`);
  });

  it('a duplicate id -> an error naming the second entry', () => {
    const { path, error } = loadError({
      clients: [
        { id: 'a', role: 'user', token: ALICE_TOKEN },
        { id: 'b', role: 'user', token: BOB_TOKEN },
        { id: 'a', role: 'admin', token: CI_TOKEN },
      ],
    });
    expect(error.message).toBe(`${path}: clients[2].id: duplicate client id "a"`);
  });

  it('a token shorter than 16 characters', () => {
    const { path, error } = loadError({ clients: [{ id: 'x', role: 'user', token: '123456789012345' }] });
    expect(error.message).toBe(`${path}: clients[0].token: must be at least 16 characters`);
    expect(loadClientsFile(file({ clients: [{ id: 'x', role: 'user', token: '1234567890123456' }] })).tokens).toHaveLength(1);
  });

  it('a bad role', () => {
    for (const role of ['has space', '', 'r'.repeat(65), 'ümlaut', 'a/b']) {
      const { path, error } = loadError({ clients: [{ id: 'x', role, token: CI_TOKEN }] });
      expect(error.message).toBe(`${path}: clients[0].role: must be 1-64 letters, digits or _.-`);
    }
  });

  it('a bad id', () => {
    const { path, error } = loadError({ clients: [{ id: 'a b', role: 'user', token: CI_TOKEN }] });
    expect(error.message).toBe(`${path}: clients[0].id: must be 1-64 letters, digits or _.@-`);
  });

  it('a tokenSha256 that is not 64 hex characters', () => {
    for (const tokenSha256 of [sha256('x').slice(1), `${sha256('x')}0`, 'g'.repeat(64)]) {
      const { path, error } = loadError({ clients: [{ id: 'x', role: 'user', tokenSha256 }] });
      expect(error.message).toBe(`${path}: clients[0].tokenSha256: must be 64 hex characters`);
    }
  });

  it('an unknown field in a client or at the top', () => {
    expect(loadError({ clients: [{ id: 'x', role: 'user', token: CI_TOKEN, secret: 'y' }] }).error.message).toMatch(/: clients\[0\]: .*secret/);
    expect(loadError({ clients: [], admins: [] }).error.message).toMatch(/: \(top level\): .*admins/);
  });

  it('a bad sharedSecretRole, a missing client list, a non-object file', () => {
    expect(loadError({ sharedSecretRole: 'a b', clients: [] }).error.message).toMatch(/: sharedSecretRole: /);
    expect(loadError({}).error.message).toMatch(/: clients: /);
    expect(loadError({ clients: {} }).error.message).toMatch(/: clients: /);
    expect(loadError([]).error.message).toMatch(/: \(top level\): /);
  });

  it('invalid JSON and a missing file name the path', () => {
    const { path, error } = loadError('{"clients": [');
    expect(error.message.startsWith(`${path}: `)).toBe(true);
    const missing = join(dir, 'missing.json');
    expect(() => loadClientsFile(missing)).toThrow(ClientsFileError);
    expect(() => loadClientsFile(missing)).toThrow(new RegExp(`^${missing.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: cannot read file: ENOENT`));
  });

  it.each(['shared-secret', 'Shared-Secret', 'SHARED-SECRET'])('refuses the reserved id %s, naming the entry and the id, never the token', (id) => {
    const { path, error } = loadError({
      clients: [
        { id: 'ok', role: 'user', token: CI_TOKEN },
        { id, role: 'admin', token: ALICE_TOKEN },
      ],
    });
    expect(error.message).toBe(`${path}: clients[1].id: ${JSON.stringify(id)} is reserved for the gateway's own principal; choose another id`);
    expect(error.message).not.toContain(ALICE_TOKEN);
    expect(error.message).not.toContain(CI_TOKEN);
  });

  it('refuses a reserved id given with a digest, without quoting the digest', () => {
    const { path, error } = loadError({ clients: [{ id: 'shared-secret', role: 'admin', tokenSha256: sha256(ALICE_TOKEN) }] });
    expect(error.message).toBe(`${path}: clients[0].id: "shared-secret" is reserved for the gateway's own principal; choose another id`);
    expect(error.message).not.toContain(sha256(ALICE_TOKEN));
  });

  it.each(['warden:gateway', 'oauth:alice', 'admin:root', 'OAuth:alice', 'Warden:x'])('refuses the reserved prefix of %s', (id) => {
    const { path, error } = loadError({ clients: [{ id, role: 'user', token: BOB_TOKEN }] });
    const prefix = `${id.slice(0, id.indexOf(':') + 1).toLowerCase()}`;
    expect(error.message).toBe(
      `${path}: clients[0].id: ${JSON.stringify(id)}: ids beginning with ${JSON.stringify(prefix)} are reserved for the gateway's own principals; choose another id`,
    );
    expect(error.message).not.toContain(BOB_TOKEN);
  });

  it('does not quote a long id with a reserved prefix', () => {
    const id = `oauth:${'q'.repeat(200)}`;
    const { path, error } = loadError({ clients: [{ id, role: 'user', token: BOB_TOKEN }] });
    expect(error.message).toBe(`${path}: clients[0].id: ids beginning with "oauth:" are reserved for the gateway's own principals; choose another id`);
  });

  it('accepts ids that only resemble a reserved one', () => {
    const ids = ['shared-secret2', 'my-shared-secret', 'admin', 'sms-admin', 'administrator', 'warden', 'oauth-proxy', 'wardenbot'];
    const config = loadClientsFile(file({ clients: ids.map((id, i) => ({ id, role: 'user', token: `${CI_TOKEN}-${i}` })) }));
    expect(config.tokens.map((t) => t.principal.clientId)).toEqual(ids);
    expect(config.tokens.every((t) => t.principal.kind === 'client')).toBe(true);
  });

  it('never puts a token in an error message', () => {
    const { error } = loadError({ clients: [{ id: 'x', role: 'bad role', token: ALICE_TOKEN }] });
    expect(error.message).not.toContain(ALICE_TOKEN);
    const short = loadError({ clients: [{ id: 'x', role: 'user', token: 'short-secret' }] }).error;
    expect(short.message).not.toContain('short-secret');
  });
});

describe('multiTokenVerifier', () => {
  let config: ReturnType<typeof loadClientsFile>;
  let verify: ReturnType<typeof multiTokenVerifier>;

  beforeAll(() => {
    config = loadClientsFile(
      file({
        sharedSecretRole: 'admin',
        clients: [
          { id: 'alice', role: 'admin', tokenSha256: sha256(ALICE_TOKEN) },
          { id: 'bob', role: 'user', tokenSha256: sha256(BOB_TOKEN) },
          { id: 'ci', role: 'user', token: CI_TOKEN },
          { id: 'intl', role: 'user', token: 'pässwörd-ümlaut-🔑-0001' },
        ],
      }),
    );
    verify = multiTokenVerifier(SHARED, config.sharedSecretRole ?? 'default', config.tokens);
  });

  it('returns the principal of each token, clear or digest', () => {
    expect(verify(ALICE_TOKEN)).toEqual({ kind: 'client', clientId: 'alice', role: 'admin' });
    expect(verify(BOB_TOKEN)).toEqual({ kind: 'client', clientId: 'bob', role: 'user' });
    expect(verify(CI_TOKEN)).toEqual({ kind: 'client', clientId: 'ci', role: 'user' });
    expect(verify('pässwörd-ümlaut-🔑-0001')).toEqual({ kind: 'client', clientId: 'intl', role: 'user' });
  });

  it('the shared secret maps to the shared-secret principal with sharedSecretRole', () => {
    expect(verify(SHARED)).toEqual({ kind: 'shared-secret', clientId: 'shared-secret', role: 'admin' });
    expect(Object.isFrozen(verify(SHARED))).toBe(true);
    const other = multiTokenVerifier(SHARED, 'reader', config.tokens);
    expect(other(SHARED)).toEqual({ kind: 'shared-secret', clientId: 'shared-secret', role: 'reader' });
    expect(other(BOB_TOKEN)).toEqual({ kind: 'client', clientId: 'bob', role: 'user' });
  });

  it('returns the same frozen principal object each time', () => {
    expect(verify(BOB_TOKEN)).toBe(verify(BOB_TOKEN));
  });

  it.each([
    ['a wrong token', 'not-a-known-token-at-all'],
    ['a prefix of a token', BOB_TOKEN.slice(0, -1)],
    ['a token with a suffix', `${BOB_TOKEN}x`],
    ['a token in another case', BOB_TOKEN.toUpperCase()],
    ['a token with surrounding space', ` ${BOB_TOKEN}`],
    ['the digest instead of the token', sha256(ALICE_TOKEN)],
    ['a prefix of the shared secret', SHARED.slice(0, 8)],
    ['the empty string', ''],
    ['the same text in another Unicode normal form', 'pässwörd-ümlaut-🔑-0001'.normalize('NFD')],
  ])('returns undefined for %s', (_label, token) => {
    expect(verify(token)).toBeUndefined();
  });

  it('with no clients, only the shared secret verifies', () => {
    const only = multiTokenVerifier(SHARED, 'default', []);
    expect(only(SHARED)).toEqual({ kind: 'shared-secret', clientId: 'shared-secret', role: 'default' });
    expect(only(ALICE_TOKEN)).toBeUndefined();
  });

  it('agrees with sharedSecretVerifier on the shared secret', () => {
    const single = sharedSecretVerifier(SHARED, 'admin');
    expect(single(SHARED)).toEqual(verify(SHARED));
    for (const token of [ALICE_TOKEN, '', SHARED.slice(1), `${SHARED} `]) expect(single(token)).toBeUndefined();
  });

  it('compares every known digest (no early exit)', () => {
    // Each entry's digest is read for every presented token; count reads through getters.
    let reads = 0;
    const counted = config.tokens.map((t) => ({
      principal: t.principal,
      get digest() {
        reads += 1;
        return t.digest;
      },
    }));
    const v = multiTokenVerifier(SHARED, 'admin', counted);
    reads = 0;
    v(ALICE_TOKEN); // the first client
    const forFirst = reads;
    reads = 0;
    v('unknown-token-value-000000');
    expect(forFirst).toBe(counted.length);
    expect(reads).toBe(counted.length);
  });

  it('digest() is SHA-256 of the UTF-8 bytes', () => {
    expect(digest('pässwörd').toString('hex')).toBe(createHash('sha256').update(Buffer.from('pässwörd', 'utf8')).digest('hex'));
  });
});

/**
 * Known gaps, each shown by a test that fails today (it.failing passes while the bug is
 * there). Remove `.failing` once fixed.
 */
describe('known issues', () => {
  // JSON.parse's message in Node 20+ quotes the text around the error, and
  // loadClientsFile passes it on; main.ts prints it to stderr. A syntax error right after
  // a token (a trailing comma here) puts the token's tail into the log.
  it('an invalid JSON error does not quote the file (which holds tokens)', () => {
    const token = 'tok-SECRETSECRETSECRET-end';
    const { error } = loadError(`{"clients":[{"id":"x","role":"user","token":"${token}"},]}`);
    for (let i = 0; i + 6 <= token.length; i += 1) expect(error.message).not.toContain(token.slice(i, i + 6));
  });
});
