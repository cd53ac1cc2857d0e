/**
 * docs/configuration.md cannot drift from the code: its flag table lists exactly the flags
 * of SOURCES, each with the variable the code reads and the default the schema applies;
 * every environment-only variable and every other setting is described; the secret
 * minimums stated are the schema's.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ENV_ONLY, settingsSchema, SOURCES, validateSettings } from '../../../src/config/settings.js';

const DOC = readFileSync(join(process.cwd(), 'docs/configuration.md'), 'utf8');
const DEFAULTS = settingsSchema.parse({}) as Record<string, unknown>;

interface Row {
  readonly flag: string;
  readonly variable: string;
  readonly defaultCell: string;
}

/** Rows of the flag table: | `--flag ARG` | `VARIABLE` | default | meaning | */
const ROWS: Row[] = DOC.split('\n').flatMap((line) => {
  const match = /^\| `--([a-z-]+)[^`]*` \| `([A-Z_]+)` \| ([^|]*) \|/.exec(line);
  return match ? [{ flag: match[1]!, variable: match[2]!, defaultCell: match[3]!.trim() }] : [];
});

/** Settings read from an environment-only variable. */
const ENV_ONLY_KEYS: Record<string, string> = {
  secret: 'WARDEN_SECRET',
  adminToken: 'WARDEN_ADMIN_TOKEN',
  auditHmacKey: 'WARDEN_AUDIT_HMAC_KEY',
  redisUrl: 'REDIS_URL',
  oauthKey: 'WARDEN_OAUTH_KEY',
  oauthKeyPrevious: 'WARDEN_OAUTH_KEY_PREVIOUS',
  flyMachineId: 'FLY_MACHINE_ID',
  flyAppName: 'FLY_APP_NAME',
};

function minLength(key: 'secret' | 'adminToken' | 'auditHmacKey' | 'oauthKey' | 'oauthKeyPrevious'): number {
  const schema = settingsSchema.shape[key].unwrap();
  const min = schema.minLength;
  if (min === null) throw new Error(`${key} has no minimum length`);
  return min;
}

describe('docs/configuration.md', () => {
  it('lists every flag of SOURCES once, and nothing else', () => {
    expect(ROWS.map((r) => r.flag).sort()).toEqual(SOURCES.map(([flag]) => flag).sort());
  });

  it.each(SOURCES.map((s) => [...s]))('--%s: reads %s', (flag, variable) => {
    expect(ROWS.find((r) => r.flag === flag)?.variable).toBe(variable);
  });

  it.each(SOURCES.map((s) => [...s]))('--%s: states the default the code applies', (flag, _variable, key) => {
    const cell = ROWS.find((r) => r.flag === flag)?.defaultCell ?? '';
    const literal = /^`([^`]*)`/.exec(cell)?.[1];
    if (literal === undefined) {
      // Prose ("none", "derived from …"): the schema has no default either.
      expect([flag, DEFAULTS[key]]).toEqual([flag, undefined]);
    } else {
      expect([flag, (validateSettings({ [key]: literal }) as Record<string, unknown>)[key]]).toEqual([flag, DEFAULTS[key]]);
    }
  });

  it('describes every environment-only variable in its own row', () => {
    for (const variable of ENV_ONLY) expect(DOC).toMatch(new RegExp(`^\\| \`${variable}\` \\|`, 'm'));
  });

  it('describes every setting: a flag, an environment-only variable, or a setting without a flag', () => {
    const fromSources = new Set<string>(SOURCES.map(([, , key]) => key));
    for (const key of Object.keys(settingsSchema.shape)) {
      if (fromSources.has(key)) continue;
      if (ENV_ONLY_KEYS[key]) expect(ENV_ONLY).toContain(ENV_ONLY_KEYS[key]);
      else expect([key, DOC.includes(`\`${key}\``)]).toEqual([key, true]);
    }
  });

  it('states the secret minimums the schema enforces', () => {
    const row = (variable: string) => DOC.split('\n').find((l) => l.startsWith(`| \`${variable}\` |`)) ?? '';
    expect(row('WARDEN_SECRET')).toContain(`at least ${minLength('secret')} characters`);
    expect(row('WARDEN_ADMIN_TOKEN')).toContain(`at least ${minLength('adminToken')} characters`);
    expect(row('WARDEN_AUDIT_HMAC_KEY')).toContain(`at least ${minLength('auditHmacKey')} characters`);
    expect(row('WARDEN_OAUTH_KEY')).toContain(`at least ${minLength('oauthKey')} characters`);
    expect(row('WARDEN_OAUTH_KEY_PREVIOUS')).toContain(`at least ${minLength('oauthKeyPrevious')} characters`);
    expect(DOC).toContain(`\`WARDEN_SECRET\` must be at least ${minLength('secret')} characters`);
  });

  it('covers the three files', () => {
    for (const heading of ['### The whitelist (`allowed-commands.json`)', '### The clients file', '### The policy file']) expect(DOC).toContain(heading);
  });
});
