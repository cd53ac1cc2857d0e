import { describe, expect, it } from '@jest/globals';
import { BUILTIN_DETECTORS, compileDetectors, type Detector, MAX_DEPTH, redactText, redactToolResult, redactValue } from '../../../src/policy/redact.js';

/**
 * Fake secrets are assembled at run time so secret scanners (and GitHub push protection)
 * do not flag this file. They have the real shapes and lengths.
 */
function fill(length: number, alphabet = 'aB3dE5gH7jK9mN1pQ2rS4tU6vW8xY0z'): string {
  let out = '';
  for (let i = 0; out.length < length; i += 1) out += alphabet[(i * 7) % alphabet.length];
  return out;
}
const b64url = (value: unknown): string => Buffer.from(JSON.stringify(value)).toString('base64url');

const AWS_KEY_ID = 'AKIAIOSFODNN7EXAMPLE';
const AWS_SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const GHP = 'ghp_' + fill(36);
const JWT = `${b64url({ alg: 'HS256', typ: 'JWT' })}.${b64url({ sub: '1234567890', name: 'John Doe', iat: 1516239022 })}.${fill(43, 'SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c')}`;
const SLACK_BOT = 'xox' + 'b-' + '123456789012-1234567890123-' + fill(24);
const PEM_BODY = [fill(64), fill(64, 'MIIEvQIBADANBgkqhkiG9w0BAQEFAASC+/'), fill(20) + '=='].join('\n');
const pem = (kind: string): string => `-----BEGIN ${kind}PRIVATE KEY-----\n${PEM_BODY}\n-----END ${kind}PRIVATE KEY-----`;
const marker = (name: string): string => `[REDACTED:${name}]`;

function redact(text: string) {
  return redactText(text, BUILTIN_DETECTORS);
}

describe('BUILTIN_DETECTORS', () => {
  it('have distinct valid names and global patterns', () => {
    const names = BUILTIN_DETECTORS.map((d) => d.name);
    expect(new Set(names).size).toBe(names.length);
    for (const d of BUILTIN_DETECTORS) {
      expect(d.name).toMatch(/^[a-z0-9_-]{1,40}$/i);
      expect(d.pattern.flags).toContain('g');
    }
    expect(names).toEqual(
      expect.arrayContaining([
        'private-key',
        'aws-access-key-id',
        'aws-secret-access-key',
        'github-token',
        'slack-webhook',
        'slack-token',
        'stripe-key',
        'anthropic-key',
        'openai-key',
        'google-api-key',
        'npm-token',
        'jwt',
        'bearer',
      ]),
    );
  });

  it('are frozen', () => {
    expect(Object.isFrozen(BUILTIN_DETECTORS)).toBe(true);
    expect(Object.isFrozen(BUILTIN_DETECTORS[0])).toBe(true);
  });
});

describe('redactText with the builtins', () => {
  it.each<[string, string, string, string]>([
    ['aws-access-key-id', 'AKIA', `id: ${AWS_KEY_ID}.`, `id: ${marker('aws-access-key-id')}.`],
    ['aws-access-key-id', 'ASIA (STS)', `"AccessKeyId": "ASIA${fill(16, 'QWERTY234567')}"`, `"AccessKeyId": "${marker('aws-access-key-id')}"`],
    ['aws-access-key-id', 'next to an underscore', `key_${AWS_KEY_ID}_old`, `key_${marker('aws-access-key-id')}_old`],
    ['aws-secret-access-key', 'ini', `aws_secret_access_key = ${AWS_SECRET}\n`, `aws_secret_access_key = ${marker('aws-secret-access-key')}\n`],
    ['aws-secret-access-key', 'env, quoted', `AWS_SECRET_ACCESS_KEY="${AWS_SECRET}"`, `AWS_SECRET_ACCESS_KEY="${marker('aws-secret-access-key')}"`],
    ['aws-secret-access-key', 'JSON', `{"SecretAccessKey": "${AWS_SECRET}"}`, `{"SecretAccessKey": "${marker('aws-secret-access-key')}"}`],
    ['aws-secret-access-key', 'YAML', `secretAccessKey: ${AWS_SECRET}`, `secretAccessKey: ${marker('aws-secret-access-key')}`],
    [
      'aws-secret-access-key',
      'XML',
      `<SecretAccessKey>${AWS_SECRET}</SecretAccessKey>`,
      `<SecretAccessKey>${marker('aws-secret-access-key')}</SecretAccessKey>`,
    ],
    ['github-token', 'ghp_', `token ${GHP} ok`, `token ${marker('github-token')} ok`],
    ['github-token', 'gho_', `gho_${fill(36)}`, marker('github-token')],
    ['github-token', 'ghs_', `GITHUB_TOKEN=ghs_${fill(40)}`, `GITHUB_TOKEN=${marker('github-token')}`],
    ['github-token', 'github_pat_', `github_pat_${fill(22)}_${fill(59)}`, marker('github-token')],
    ['slack-token', 'xoxb', `SLACK_BOT_TOKEN=${SLACK_BOT}`, `SLACK_BOT_TOKEN=${marker('slack-token')}`],
    ['slack-token', 'xoxp', `xox${'p'}-1234567890-${fill(30)}`, marker('slack-token')],
    ['slack-webhook', 'services URL', `post to https://hooks.slack.com/services/T0000AAAA/B0000BBBB/${fill(24)} now`, `post to ${marker('slack-webhook')} now`],
    ['jwt', 'HS256 token', `token=${JWT}&x=1`, `token=${marker('jwt')}&x=1`],
    ['jwt', 'after Bearer (the more specific name wins)', `Authorization: Bearer ${JWT}`, `Authorization: Bearer ${marker('jwt')}`],
    ['bearer', 'Authorization header', `Authorization: Bearer ${fill(32)}\r\n`, `Authorization: Bearer ${marker('bearer')}\r\n`],
    ['bearer', 'in prose, full stop kept', `Use bearer ${fill(20)}-${fill(8)}.`, `Use bearer ${marker('bearer')}.`],
    ['private-key', 'PKCS#8', `key:\n${pem('')}\nafter`, `key:\n${marker('private-key')}\nafter`],
    ['private-key', 'RSA', pem('RSA '), marker('private-key')],
    ['private-key', 'EC', `x${pem('EC ')}y`, `x${marker('private-key')}y`],
    ['private-key', 'OPENSSH', pem('OPENSSH '), marker('private-key')],
    ['private-key', 'ENCRYPTED', pem('ENCRYPTED '), marker('private-key')],
    [
      'private-key',
      'legacy encrypted headers with dashes',
      `-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,${fill(32, '0123456789ABCDEF')}\n\n${PEM_BODY}\n-----END RSA PRIVATE KEY-----`,
      marker('private-key'),
    ],
    [
      'private-key',
      'truncated, no END line',
      `$ head -3 id_rsa\n-----BEGIN RSA PRIVATE KEY-----\n${fill(64)}\n${fill(64)}`,
      `$ head -3 id_rsa\n${marker('private-key')}`,
    ],
    ['google-api-key', 'AIza', `key=AIza${fill(35, 'Sy-_09azAZ')}&q=1`, `key=${marker('google-api-key')}&q=1`],
    ['stripe-key', 'sk_live_', `sk_${'live'}_${fill(24)}`, marker('stripe-key')],
    ['stripe-key', 'sk_test_', `stripe: sk_${'test'}_${fill(99)}`, `stripe: ${marker('stripe-key')}`],
    ['stripe-key', 'rk_live_', `rk_${'live'}_${fill(30)}`, marker('stripe-key')],
    ['openai-key', 'legacy sk-', `OPENAI_API_KEY=sk-${fill(48)}`, `OPENAI_API_KEY=${marker('openai-key')}`],
    ['openai-key', 'sk-proj-', `sk-proj-${fill(60, 'aZ9_-x')}`, marker('openai-key')],
    ['anthropic-key', 'sk-ant-', `x-api-key: sk-ant-api03-${fill(93, 'aZ9_-y')}AA`, `x-api-key: ${marker('anthropic-key')}`],
    ['npm-token', 'npm_', `//registry.npmjs.org/:_authToken=npm_${fill(36)}`, `//registry.npmjs.org/:_authToken=${marker('npm-token')}`],
  ])('%s: %s', (name, _shape, input, expected) => {
    const out = redact(input);
    expect(out).toEqual({ text: expected, count: 1, names: [name] });
  });

  it.each<[string, string]>([
    ['AKIA + 15 characters', 'AKIAIOSFODNN7EXAMPL is short'],
    ['AKIA + 17 characters', 'AKIAIOSFODNN7EXAMPLEX'],
    ['lower-case akia', 'akiaiosfodnn7example'],
    ['an unlabelled 40-character base64 string', `sha: ${AWS_SECRET}`],
    ['a labelled 41-character value', `aws_secret_access_key=${AWS_SECRET}x`],
    ['ghp_short', 'ghp_short'],
    ['ghp_ + 35', `ghp_${fill(35)}`],
    ['ghp_ inside a word', `xghp_${fill(36)}`],
    ['Bearer as the last word', 'The token is handed to its Bearer'],
    ['Bearer before an ordinary word', 'Send a Bearer token in the Authorization header.'],
    ['a lone JWT header', 'eyJhbGciOiJIUzI1NiJ9'],
    ['sk- + 31', `sk-${fill(31)}`],
    ['sk_live_ short', 'sk_live_abc'],
    ['a public key block', `-----BEGIN PUBLIC KEY-----\n${PEM_BODY}\n-----END PUBLIC KEY-----`],
    ['a certificate', `-----BEGIN CERTIFICATE-----\n${PEM_BODY}\n-----END CERTIFICATE-----`],
    ['password= (not detected on purpose)', 'password=hunter2 passwd: hunter2'],
    ['a slack URL that is not a webhook', 'https://hooks.slack.com/services/...'],
    ['base64 PNG data', 'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='],
  ])('leaves %s alone', (_label, input) => {
    const out = redact(input);
    expect(out).toEqual({ text: input, count: 0, names: [] });
  });

  it('counts every replacement and lists distinct names in text order', () => {
    const out = redact(`a ${GHP} b ${AWS_KEY_ID} c ${GHP} d`);
    expect(out.text).toBe(`a ${marker('github-token')} b ${marker('aws-access-key-id')} c ${marker('github-token')} d`);
    expect(out.count).toBe(3);
    expect(out.names).toEqual(['github-token', 'aws-access-key-id']);
  });

  it('merges overlapping matches into one marker named after the longest', () => {
    // The PEM body holds an AWS key id; the block is the longer match and wins.
    const block = `-----BEGIN PRIVATE KEY-----\n${AWS_KEY_ID}\n-----END PRIVATE KEY-----`;
    expect(redact(block)).toEqual({ text: marker('private-key'), count: 1, names: ['private-key'] });
  });

  it('merges partial overlaps so no tail of either match leaks', () => {
    const detectors = compileDetectors(
      [
        { name: 'left', regex: 'abcd' },
        { name: 'right', regex: 'cdef' },
      ],
      { builtin: false },
    );
    expect(redactText('xabcdefx', detectors)).toEqual({ text: `x${marker('left')}x`, count: 1, names: ['left'] });
  });

  it('does not match inside its own markers: a second pass finds nothing', () => {
    const once = redact(`${pem('RSA ')} Bearer ${fill(40)} ${JWT} ${SLACK_BOT} ${GHP}`);
    expect(once.count).toBe(5);
    expect(redact(once.text)).toEqual({ text: once.text, count: 0, names: [] });
  });

  it('returns the same string when nothing matches', () => {
    const text = 'nothing secret here';
    expect(redactText(text, BUILTIN_DETECTORS).text).toBe(text);
    expect(redactText('', BUILTIN_DETECTORS)).toEqual({ text: '', count: 0, names: [] });
  });

  it('a list with a custom detector is scanned in full, even where no builtin could match', () => {
    const detectors = compileDetectors([{ name: 'ticket', regex: 'TCK-\\d{3}' }]);
    expect(redactText('see TCK-123 today', detectors)).toEqual({ text: `see ${marker('ticket')} today`, count: 1, names: ['ticket'] });
    // The same builtins compiled without customs find what the frozen list finds.
    const builtinsOnly = compileDetectors([]);
    expect(redactText(`id ${AWS_KEY_ID}`, builtinsOnly)).toEqual(redactText(`id ${AWS_KEY_ID}`, BUILTIN_DETECTORS));
    expect(redactText('plain tool output', builtinsOnly)).toEqual({ text: 'plain tool output', count: 0, names: [] });
  });

  it('neither uses nor changes the lastIndex of the caller’s regexes', () => {
    const pattern = /secret\d/g;
    pattern.lastIndex = 7;
    const detectors: Detector[] = [{ name: 'custom', pattern }];
    expect(redactText('secret1 secret2', detectors).count).toBe(2);
    expect(redactText('secret3', detectors).count).toBe(1);
    expect(pattern.lastIndex).toBe(7);
  });

  it('gives the same answer on repeated calls (no state carried between texts)', () => {
    const text = `x ${GHP} y`;
    const first = redact(text);
    expect(redact(`${GHP}`).count).toBe(1);
    expect(redact(text)).toEqual(first);
  });

  it('scans with a hand-built detector that lacks the g flag', () => {
    const detectors: Detector[] = [{ name: 'nog', pattern: /k\d/ }];
    expect(redactText('k1 k2', detectors)).toEqual({ text: `${marker('nog')} ${marker('nog')}`, count: 2, names: ['nog'] });
  });

  it('ignores empty matches without looping', () => {
    const detectors = compileDetectors([{ name: 'stars', regex: 'x*' }], { builtin: false });
    expect(redactText('ab xx c', detectors)).toEqual({ text: `ab ${marker('stars')} c`, count: 1, names: ['stars'] });
  });
});

describe('compileDetectors', () => {
  it('puts the builtins first, then the custom patterns with g added', () => {
    const detectors = compileDetectors([{ name: 'ticket', regex: 'TKT-\\d{6}', flags: 'i' }]);
    expect(detectors.slice(0, BUILTIN_DETECTORS.length)).toEqual([...BUILTIN_DETECTORS]);
    const custom = detectors[BUILTIN_DETECTORS.length];
    expect(custom?.name).toBe('ticket');
    expect(custom?.pattern.flags).toBe('gi');
    expect(redactText('tkt-123456 and TKT-654321', detectors)).toEqual({
      text: `${marker('ticket')} and ${marker('ticket')}`,
      count: 2,
      names: ['ticket'],
    });
  });

  it('defaults to no custom detectors beyond the builtins', () => {
    expect(compileDetectors([]).map((d) => d.name)).toEqual(BUILTIN_DETECTORS.map((d) => d.name));
  });

  it('leaves the builtins out with builtin: false', () => {
    const detectors = compileDetectors([{ name: 'only', regex: 'zzz' }], { builtin: false });
    expect(detectors.map((d) => d.name)).toEqual(['only']);
    expect(redactText(AWS_KEY_ID, detectors).count).toBe(0);
  });

  it('accepts flags that already hold g', () => {
    expect(compileDetectors([{ name: 'g', regex: 'a', flags: 'gm' }], { builtin: false })[0]?.pattern.flags).toBe('gm');
  });

  it('replaces only a named group `secret` when there is one', () => {
    const detectors = compileDetectors([{ name: 'internal', regex: 'X-Internal-Key: (?<secret>[a-f0-9]{16})' }], { builtin: false });
    expect(redactText('X-Internal-Key: 0123456789abcdef', detectors).text).toBe(`X-Internal-Key: ${marker('internal')}`);
  });

  it.each<[string, { name: string; regex: string; flags?: string }, RegExp]>([
    ['an invalid regex', { name: 'broken-one', regex: '(unclosed' }, /"broken-one".*invalid regex/],
    ['invalid flags', { name: 'bad-flags', regex: 'a', flags: 'z' }, /"bad-flags".*invalid regex/],
    ['the sticky flag', { name: 'sticky', regex: 'a', flags: 'y' }, /"sticky".*sticky/],
    ['an empty regex', { name: 'empty', regex: '' }, /"empty".*non-empty/],
    ['a name with a space', { name: 'has space', regex: 'a' }, /"has space"/],
    ['a name with a bracket', { name: 'a]b', regex: 'a' }, /"a]b"/],
    ['an empty name', { name: '', regex: 'a' }, /name ""/],
    ['a 41-character name', { name: 'n'.repeat(41), regex: 'a' }, new RegExp(`"${'n'.repeat(41)}"`)],
    ['a builtin name', { name: 'jwt', regex: 'a' }, /"jwt".*already used/],
  ])('throws a TypeError naming the pattern for %s', (_label, spec, message) => {
    expect(() => compileDetectors([spec])).toThrow(TypeError);
    expect(() => compileDetectors([spec])).toThrow(message);
  });

  it('rejects a name used twice among the custom patterns', () => {
    const specs = [
      { name: 'dup', regex: 'a' },
      { name: 'dup', regex: 'b' },
    ];
    expect(() => compileDetectors(specs, { builtin: false })).toThrow(/"dup".*already used/);
  });

  it('allows a builtin name when the builtins are left out', () => {
    expect(compileDetectors([{ name: 'jwt', regex: 'a' }], { builtin: false })[0]?.name).toBe('jwt');
  });

  it('rejects a non-array and a non-string regex', () => {
    expect(() => compileDetectors('x' as unknown as [])).toThrow(TypeError);
    expect(() => compileDetectors([{ name: 'n', regex: 42 as unknown as string }])).toThrow(/"n".*regex must be/);
  });
});

/** Deep copy to compare the input against after the call. */
const snapshot = <T>(value: T): T => structuredClone(value);

describe('redactToolResult', () => {
  it('redacts text content and returns a new object, leaving the input untouched', () => {
    const input = {
      content: [
        { type: 'text', text: `key ${AWS_KEY_ID}` },
        { type: 'text', text: 'clean' },
      ],
      isError: false,
    };
    const before = snapshot(input);
    const out = redactToolResult(input, BUILTIN_DETECTORS);
    expect(out).toEqual({
      result: {
        content: [
          { type: 'text', text: `key ${marker('aws-access-key-id')}` },
          { type: 'text', text: 'clean' },
        ],
        isError: false,
      },
      count: 1,
      names: ['aws-access-key-id'],
    });
    expect(out.result).not.toBe(input);
    expect(input).toEqual(before);
    // Unchanged parts are shared, not copied.
    expect((out.result as typeof input).content[1]).toBe(input.content[1]);
  });

  it('returns the same reference when nothing was redacted', () => {
    const input = {
      content: [
        { type: 'text', text: 'all clean' },
        { type: 'image', data: 'iVBORw0KGgo=', mimeType: 'image/png' },
      ],
      structuredContent: { a: [1, 'two', { b: null }] },
    };
    const out = redactToolResult(input, BUILTIN_DETECTORS);
    expect(out.result).toBe(input);
    expect(out.count).toBe(0);
    expect(out.names).toEqual([]);
  });

  it('redacts embedded resource text but keeps blob and image/audio data as they are', () => {
    // Base64 payloads that happen to hold secret-shaped runs must not be corrupted.
    const base64 = `iVBORw0KGgo+${AWS_KEY_ID}/AAAA`;
    expect(redact(base64).count).toBe(1);
    const input = {
      content: [
        { type: 'resource', resource: { uri: 'file:///home/u/.env', mimeType: 'text/plain', text: `TOKEN=${GHP}` } },
        { type: 'resource', resource: { uri: 'file:///img.png', mimeType: 'image/png', blob: base64 } },
        { type: 'image', data: base64, mimeType: 'image/png' },
        { type: 'audio', data: base64, mimeType: 'audio/wav' },
      ],
    };
    const before = snapshot(input);
    const out = redactToolResult(input, BUILTIN_DETECTORS);
    const content = (out.result as typeof input).content;
    expect(content[0]).toEqual({ type: 'resource', resource: { uri: 'file:///home/u/.env', mimeType: 'text/plain', text: `TOKEN=${marker('github-token')}` } });
    expect(content.slice(1)).toEqual(input.content.slice(1));
    expect(out.count).toBe(1);
    expect(input).toEqual(before);
  });

  it('redacts every string value in structuredContent at any depth, not the keys', () => {
    const input = {
      content: [{ type: 'text', text: '{"see":"structuredContent"}' }],
      structuredContent: {
        [AWS_KEY_ID]: 'key names stay',
        n: 42,
        ok: true,
        none: null,
        data: `github: ${GHP}`,
        blob: AWS_KEY_ID,
        type: 'image',
        nested: { list: [[`Bearer ${fill(30)}`, 7], [{ deep: [{ deeper: JWT }] }]] },
      },
    };
    const before = snapshot(input);
    const out = redactToolResult(input, BUILTIN_DETECTORS);
    expect(out.result).toEqual({
      content: input.content,
      structuredContent: {
        [AWS_KEY_ID]: 'key names stay',
        n: 42,
        ok: true,
        none: null,
        data: `github: ${marker('github-token')}`,
        blob: marker('aws-access-key-id'),
        type: 'image',
        nested: { list: [[`Bearer ${marker('bearer')}`, 7], [{ deep: [{ deeper: marker('jwt') }] }]] },
      },
    });
    expect(out.count).toBe(4);
    expect(out.names).toEqual(['github-token', 'aws-access-key-id', 'bearer', 'jwt']);
    expect(input).toEqual(before);
    expect((out.result as typeof input).content).toBe(input.content);
  });

  it('sums counts and names across content and structuredContent', () => {
    const input = {
      content: [{ type: 'text', text: `${AWS_KEY_ID} and ${AWS_KEY_ID}` }],
      structuredContent: { id: AWS_KEY_ID, slack: SLACK_BOT },
    };
    const out = redactToolResult(input, BUILTIN_DETECTORS);
    expect(out.count).toBe(4);
    expect(out.names).toEqual(['aws-access-key-id', 'slack-token']);
  });

  it('walks unknown content types generically', () => {
    const input = { content: [{ type: 'resource_link', uri: 'file:///x', name: 'x', description: `uses ${GHP}` }] };
    const out = redactToolResult(input, BUILTIN_DETECTORS);
    expect((out.result as typeof input).content[0]?.description).toBe(`uses ${marker('github-token')}`);
    expect(out.count).toBe(1);
  });

  it('handles results that are not objects', () => {
    expect(redactToolResult(`x ${AWS_KEY_ID}`, BUILTIN_DETECTORS)).toEqual({
      result: `x ${marker('aws-access-key-id')}`,
      count: 1,
      names: ['aws-access-key-id'],
    });
    expect(redactToolResult(null, BUILTIN_DETECTORS)).toEqual({ result: null, count: 0, names: [] });
    const list = [AWS_KEY_ID];
    expect(redactToolResult(list, BUILTIN_DETECTORS).result).toEqual([marker('aws-access-key-id')]);
    expect(list).toEqual([AWS_KEY_ID]);
  });

  it('keeps an own __proto__ key a plain property', () => {
    const input = JSON.parse(`{"structuredContent":{"__proto__":"${AWS_KEY_ID}"}}`) as Record<string, Record<string, unknown>>;
    const out = redactToolResult(input, BUILTIN_DETECTORS).result as typeof input;
    const sc = out['structuredContent'] as Record<string, unknown>;
    expect(Object.getPrototypeOf(sc)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(sc, '__proto__')?.value).toBe(marker('aws-access-key-id'));
  });

  it('refuses values nested beyond MAX_DEPTH and cyclic values with a RangeError', () => {
    let deep: unknown = AWS_KEY_ID;
    for (let i = 0; i < MAX_DEPTH + 5; i += 1) deep = [deep];
    expect(() => redactToolResult({ structuredContent: deep }, BUILTIN_DETECTORS)).toThrow(RangeError);

    const cyclic: Record<string, unknown> = { text: 'x' };
    cyclic['self'] = cyclic;
    expect(() => redactValue(cyclic, BUILTIN_DETECTORS)).toThrow(RangeError);

    let ok: unknown = AWS_KEY_ID;
    for (let i = 0; i < 100; i += 1) ok = [ok];
    expect(redactValue(ok, BUILTIN_DETECTORS).count).toBe(1);
  });
});

describe('binary fields', () => {
  it('text that is not base64 in an image, audio or blob field is scanned like any string', () => {
    const input = {
      content: [
        { type: 'image', data: `key: ${AWS_KEY_ID}`, mimeType: 'image/png' },
        { type: 'audio', data: `token ${GHP}`, mimeType: 'audio/wav' },
        { type: 'resource', resource: { uri: 'file:///x.bin', blob: `Authorization: Bearer ${JWT}` } },
      ],
    };
    const out = redactToolResult(input, BUILTIN_DETECTORS);
    expect(out.result).toEqual({
      content: [
        { type: 'image', data: `key: ${marker('aws-access-key-id')}`, mimeType: 'image/png' },
        { type: 'audio', data: `token ${marker('github-token')}`, mimeType: 'audio/wav' },
        { type: 'resource', resource: { uri: 'file:///x.bin', blob: `Authorization: Bearer ${marker('jwt')}` } },
      ],
    });
    expect(redactValue({ type: 'image', data: `a b ${AWS_KEY_ID}` }, BUILTIN_DETECTORS).count).toBe(1);
  });

  it('base64 and base64url, also wrapped in lines, are kept', () => {
    for (const data of [`iVBOR+${AWS_KEY_ID}/AA==`, `iVBOR-${AWS_KEY_ID}_AA`, `iVBOR${AWS_KEY_ID}\r\nAAAA\nAA==\n`]) {
      const input = { type: 'image', data, mimeType: 'image/png' };
      expect(redactValue(input, BUILTIN_DETECTORS).result).toBe(input);
    }
  });

  it.each([
    ['long lines', 'A'.repeat(1_000_000) + '\n'.repeat(3) + 'A'.repeat(1_000_000) + ' '],
    ['wrapped lines', ('A'.repeat(76) + '\r\n').repeat(20_000) + ' '],
    ['a run of line breaks', 'A' + '\n'.repeat(100_000) + ' '],
  ])('the base64 check is linear on a large payload that is almost base64: %s', (_label, data) => {
    expect(cpuMs(() => redactValue({ type: 'image', data }, BUILTIN_DETECTORS), 500)).toBeLessThan(500);
  });
});

describe('redactValue', () => {
  it('redacts resources/read text contents and keeps blobs', () => {
    const blob = `AAAA+${AWS_KEY_ID}/AAAA`;
    expect(redact(blob).count).toBe(1);
    const input = {
      contents: [
        { uri: 'file:///a.pem', mimeType: 'text/plain', text: pem('EC ') },
        { uri: 'file:///b.bin', mimeType: 'application/octet-stream', blob },
      ],
    };
    const before = snapshot(input);
    const out = redactValue(input, BUILTIN_DETECTORS);
    expect(out).toEqual({
      result: {
        contents: [
          { uri: 'file:///a.pem', mimeType: 'text/plain', text: marker('private-key') },
          { uri: 'file:///b.bin', mimeType: 'application/octet-stream', blob },
        ],
      },
      count: 1,
      names: ['private-key'],
    });
    expect(input).toEqual(before);
    expect((out.result as typeof input).contents[1]).toBe(input.contents[1]);
  });

  it('redacts a `blob` that is not part of a resource (no uri beside it)', () => {
    expect(redactValue({ blob: AWS_KEY_ID }, BUILTIN_DETECTORS).result).toEqual({ blob: marker('aws-access-key-id') });
  });

  it('leaves non-plain objects alone', () => {
    const date = new Date(0);
    const out = redactValue({ when: date, text: AWS_KEY_ID }, BUILTIN_DETECTORS).result as { when: Date };
    expect(out.when).toBe(date);
  });
});

/**
 * CPU milliseconds `run` takes: process CPU time, not wall time, so a loaded machine does
 * not fail the test. A run over `limit` (but not far over) is retried up to twice and the
 * best kept, so one GC pause does not either; a super-linear pattern stays slow every time.
 */
function cpuMs(run: () => void, limit: number): number {
  let best = Number.POSITIVE_INFINITY;
  for (let attempt = 0; attempt < 3; attempt += 1) {
    const start = process.cpuUsage();
    run();
    const used = process.cpuUsage(start);
    best = Math.min(best, (used.user + used.system) / 1000);
    if (best <= limit || best > 4 * limit) break;
  }
  return best;
}

describe('performance on adversarial input', () => {
  const SIZE = 1_000_000;
  const LIMIT_MS = 500;
  const seeds = [
    'AKIA',
    'aws_secret_access_key=',
    'SecretAccessKey ',
    'ghp_',
    'github_pat_',
    'xoxb-',
    'xoxe.xoxp-',
    'https://hooks.slack.com/services/',
    'eyJ',
    'eyJa.',
    'eyJa.eyJ',
    'Bearer ',
    'bearer\t',
    'Bearer',
    '-----BEGIN PRIVATE KEY-----',
    '-----BEGIN ',
    '-----BEGIN RSA ',
    '-----',
    'AIza',
    'sk_live_',
    'sk-',
    'sk-ant-',
    'npm_',
    ' ',
    '-',
    '.',
    'a',
    'A',
  ];
  // Each seed repeated, and each seed followed by one long run that almost matches.
  const shapes = seeds.flatMap((seed) => [
    (size: number) => seed.repeat(Math.ceil(size / seed.length)),
    ...['a', 'A', 'x', '-'].map((run) => (size: number) => seed + run.repeat(size)),
  ]);

  it.each(BUILTIN_DETECTORS.map((d) => [d.name, d] as const))('%s stays linear on 1 MB adversarial strings', (_name, detector) => {
    const slow: string[] = [];
    for (const shape of shapes) {
      // 100 KB first, under the same limit: a quadratic pattern fails there within seconds,
      // where 1 MB would block the (synchronous) test for minutes.
      for (const size of [SIZE / 10, SIZE]) {
        const input = shape(size);
        const ms = cpuMs(() => redactText(input, [detector]), LIMIT_MS);
        if (ms > LIMIT_MS) {
          slow.push(`${JSON.stringify(input.slice(0, 24))}… (${input.length} chars) took ${ms.toFixed(0)} ms`);
          break;
        }
      }
    }
    expect(slow).toEqual([]);
  });

  it('the three named cases all run through every builtin together well under a second', () => {
    for (const input of ['eyJ' + 'a'.repeat(SIZE), 'A'.repeat(SIZE), '-----BEGIN PRIVATE KEY-----' + 'x'.repeat(SIZE)]) {
      let out = { count: -1 };
      expect(cpuMs(() => (out = redact(input)), LIMIT_MS)).toBeLessThan(LIMIT_MS);
      // The unterminated key block is still hidden; the other two hold no secret.
      expect(out.count).toBe(input.startsWith('-----BEGIN') ? 1 : 0);
    }
  });
});
