/**
 * The committed JSON Schema cannot go stale: it must be exactly what
 * `policyJsonSchema()` (and so `npm run schema`) produces now. The seed example must
 * validate against both the zod schema and the JSON Schema, and the two must agree.
 *
 * ajv comes in through @modelcontextprotocol/sdk; it is used here only to prove the
 * generated schema works in a real JSON Schema 2020-12 validator.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as Ajv2020Module from 'ajv/dist/2020.js';
import { policyJsonSchema, policySchema } from '../../../src/policy/schema.js';
import { parsePolicy } from '../../../src/policy/store.js';

const SCHEMA_URL = new URL('../../../schema/policy.schema.json', import.meta.url);
const EXAMPLE_URL = new URL('../../../examples/policy.sms.json', import.meta.url);

type AjvClass = new (options: Record<string, unknown>) => {
  compile(schema: unknown): ((data: unknown) => boolean) & { errors?: unknown[] | null };
};
// CommonJS default export, seen through ESM interop either as the module or its `default`.
const AjvModule = Ajv2020Module as unknown as { default: AjvClass | { default: AjvClass } };
const Ajv2020: AjvClass = typeof AjvModule.default === 'function' ? AjvModule.default : AjvModule.default.default;

const committedText = readFileSync(SCHEMA_URL, 'utf8');
const committed = JSON.parse(committedText) as Record<string, unknown>;
const validate = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true }).compile(committed);

describe('schema/policy.schema.json', () => {
  it('deep-equals what policyJsonSchema() produces now (run `npm run schema` after editing src/policy/schema.ts)', () => {
    expect(committed).toEqual(JSON.parse(JSON.stringify(policyJsonSchema())));
  });

  it('is byte-for-byte what scripts/write-schema.mjs writes', () => {
    expect(committedText).toBe(`${JSON.stringify(policyJsonSchema(), null, 2)}\n`);
  });

  it('is a draft 2020-12 schema for a closed object where every key is optional', () => {
    expect(committed).toMatchObject({
      $schema: 'https://json-schema.org/draft/2020-12/schema',
      type: 'object',
      additionalProperties: false,
    });
    expect(committed['required']).toBeUndefined();
  });
});

describe('examples/policy.sms.json', () => {
  const text = readFileSync(EXAMPLE_URL, 'utf8');
  const doc = JSON.parse(text) as Record<string, unknown>;

  it('validates against the zod schema and compiles', () => {
    expect(policySchema.safeParse(doc).success).toBe(true);
    expect(parsePolicy(text, 'examples/policy.sms.json').name).toBe('sms-seed');
  });

  it('validates against the committed JSON Schema', () => {
    const ok = validate(doc);
    expect(validate.errors ?? []).toEqual([]);
    expect(ok).toBe(true);
  });

  it('points $schema at the committed schema file', () => {
    expect(typeof doc['$schema']).toBe('string');
    expect(fileURLToPath(new URL(doc['$schema'] as string, EXAMPLE_URL))).toBe(fileURLToPath(SCHEMA_URL));
  });
});

describe('the zod schema and the JSON Schema agree', () => {
  const valid: [string, unknown][] = [
    ['minimal', { name: 'x' }],
    ['empty (every key optional)', {}],
    ['the simple form without a name', { default: 'deny', tools: { allow: ['echo'] } }],
    ['numeric version', { name: 'x', version: 2 }],
    ['full section', { name: 'x', default: 'deny', tools: { allow: ['a*'], deny: ['b?'] }, resources: { allow: ['file:///*'] }, prompts: { deny: ['p'] } }],
    [
      'argument rules',
      {
        name: 'x',
        arguments: {
          t: {
            maxTotalBytes: 1,
            additionalArgs: false,
            args: { a: { required: true, type: 'integer', maxLength: 0, pattern: '^a', notPattern: 'b', enum: ['1', 1, true, null] } },
          },
        },
      },
    ],
    ['rate limits', { name: 'x', rateLimits: { 't*': { calls: 1, perSeconds: 1, per: 'role' } } }],
    ['commands with roles', { name: 'x', commands: { sms: { roles: { 'user.v2': { default: 'allow' } } } } }],
    ['redaction', { name: 'x', redaction: { enabled: true, builtin: false, patterns: [{ name: 'n_1', regex: 'x', flags: 'iu' }], exceptTools: ['t'] } }],
    ['audit', { name: 'x', audit: { includeArguments: true }, mode: 'shadow' }],
  ];
  const invalid: [string, unknown][] = [
    ['empty name', { name: '' }],
    ['unknown top-level key', { name: 'x', extra: 1 }],
    ['unknown section key', { name: 'x', roles: { user: { tool: {} } } }],
    ['roles inside a role', { name: 'x', roles: { user: { roles: {} } } }],
    ['bad default', { name: 'x', default: 'maybe' }],
    ['bad mode', { name: 'x', mode: 'audit' }],
    ['empty glob', { name: 'x', tools: { allow: [''] } }],
    ['glob too long', { name: 'x', tools: { deny: ['x'.repeat(257)] } }],
    ['bad role name', { name: 'x', roles: { 'a b': {} } }],
    ['fractional maxLength', { name: 'x', arguments: { t: { args: { a: { maxLength: 1.5 } } } } }],
    ['negative maxLength', { name: 'x', arguments: { t: { args: { a: { maxLength: -1 } } } } }],
    ['zero maxTotalBytes', { name: 'x', arguments: { t: { maxTotalBytes: 0 } } }],
    ['bad arg type', { name: 'x', arguments: { t: { args: { a: { type: 'float' } } } } }],
    ['object in enum', { name: 'x', arguments: { t: { args: { a: { enum: [{}] } } } } }],
    ['zero calls', { name: 'x', rateLimits: { t: { calls: 0, perSeconds: 1 } } }],
    ['bad per', { name: 'x', rateLimits: { t: { calls: 1, perSeconds: 1, per: 'session' } } }],
    ['bad pattern name', { name: 'x', redaction: { patterns: [{ name: 'has space', regex: 'x' }] } }],
    ['sticky flag', { name: 'x', redaction: { patterns: [{ name: 'n', regex: 'x', flags: 'y' }] } }],
    ['unknown audit key', { name: 'x', audit: { arguments: true } }],
  ];

  it.each(valid)('both accept: %s', (_label, doc) => {
    expect(policySchema.safeParse(doc).success).toBe(true);
    expect(validate(doc)).toBe(true);
  });

  it.each(invalid)('both reject: %s', (_label, doc) => {
    expect(policySchema.safeParse(doc).success).toBe(false);
    expect(validate(doc)).toBe(false);
  });
});
