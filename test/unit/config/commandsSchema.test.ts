/**
 * schema/allowed-commands.schema.json cannot go stale: it must be exactly what
 * `commandsJsonSchema()` (and so `npm run schema`) produces now. The shipped whitelists
 * validate against it and point `$schema` at it, and it agrees with the loader on entries.
 *
 * ajv comes in through @modelcontextprotocol/sdk; it is used only to prove the generated
 * schema works in a real JSON Schema 2020-12 validator.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import * as Ajv2020Module from 'ajv/dist/2020.js';
import { parseCommands } from '../../../src/config/commands.js';
import { commandsJsonSchema } from '../../../src/config/commandsSchema.js';

const SCHEMA_URL = new URL('../../../schema/allowed-commands.schema.json', import.meta.url);
const SHIPPED = ['../../../allowed-commands.json', '../../../examples/allowed-commands.npx.json'].map((path) => new URL(path, import.meta.url));

type AjvClass = new (options: Record<string, unknown>) => {
  compile(schema: unknown): ((data: unknown) => boolean) & { errors?: unknown[] | null };
};
const AjvModule = Ajv2020Module as unknown as { default: AjvClass | { default: AjvClass } };
const Ajv2020: AjvClass = typeof AjvModule.default === 'function' ? AjvModule.default : AjvModule.default.default;

const committedText = readFileSync(SCHEMA_URL, 'utf8');
const validate = new Ajv2020({ strict: true, allowUnionTypes: true, allErrors: true }).compile(JSON.parse(committedText));

describe('schema/allowed-commands.schema.json', () => {
  it('is byte-for-byte what scripts/write-schema.mjs writes (run `npm run schema` after editing src/config/commands.ts or commandsSchema.ts)', () => {
    expect(committedText).toBe(`${JSON.stringify(commandsJsonSchema(), null, 2)}\n`);
  });

  it.each(SHIPPED.map((url) => [fileURLToPath(url), url] as const))('%s validates and points $schema at it', (_name, url) => {
    const doc = JSON.parse(readFileSync(url, 'utf8')) as Record<string, unknown>;
    expect(validate(doc)).toBe(true);
    expect(fileURLToPath(new URL(doc['$schema'] as string, url))).toBe(fileURLToPath(SCHEMA_URL));
  });
});

describe('the JSON Schema and the loader agree on entries', () => {
  const valid: [string, Record<string, unknown>][] = [
    ['the key as a command line', { 'npx -y pkg': {} }],
    ['the older string shape', { 'npx -y pkg': 'npx -y pkg' }],
    [
      'every field',
      {
        x: {
          command: 'node',
          args: ['a'],
          env: { A_1: 'v' },
          allowedEnv: ['TOKEN', 'GH_*'],
          cwd: 'sub',
          description: 'd',
          pool: { min: 2 },
          maxChildren: 3,
          mode: 'shared',
          sharedChildren: 2,
          idle: 'hibernate',
        },
      },
    ],
    ['with $schema', { $schema: './s.json', x: {} }],
  ];
  const invalid: [string, Record<string, unknown>][] = [
    ['an unknown field', { x: { argz: [] } }],
    ['a bad env name', { x: { env: { 'A-B': 'v' } } }],
    ['a lower-case allowedEnv name', { x: { allowedEnv: ['token'] } }],
    ['a bad mode', { x: { mode: 'pooled' } }],
    ['a bad idle', { x: { idle: 'sleep' } }],
    ['pool.min out of range', { x: { pool: { min: 65 } } }],
    ['sharedChildren out of range', { x: { sharedChildren: 17 } }],
    ['a key with a leading space', { ' x': {} }],
    ['an empty key', { '': {} }],
    ['no entry at all', {}],
    ['a number value', { x: 42 }],
  ];

  it.each(valid)('%s: both accept', (_label, doc) => {
    expect(validate(doc)).toBe(true);
    expect(() => parseCommands(doc, '/b')).not.toThrow();
  });

  it.each(invalid)('%s: both refuse', (_label, doc) => {
    expect(validate(doc)).toBe(false);
    expect(() => parseCommands(doc, '/b')).toThrow();
  });
});
