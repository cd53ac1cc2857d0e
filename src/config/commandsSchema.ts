/**
 * The JSON Schema of the whitelist file, `schema/allowed-commands.schema.json`, generated from
 * the loader's own zod schema (npm run schema; a test checks the committed file is current).
 */
import { z } from 'zod';
import { commandEntrySchema, MAX_COMMAND_KEY_LENGTH, SCHEMA_KEY } from './commands.js';

/**
 * The whole file, for the JSON Schema only (the loader checks more than a JSON Schema can
 * say: a string value must equal its key, and the key rules below).
 */
export const commandsFileSchema = z
  .object({ [SCHEMA_KEY]: z.string().optional().describe('Where editors find this JSON Schema; not an entry') })
  .catchall(z.union([commandEntrySchema, z.string().describe('The older shape: a string identical to its key')]))
  .meta({
    title: 'mcp-warden whitelist (allowed-commands.json)',
    description:
      "The servers the gateway may start. Each key is a server's name in URLs (/<encodeURIComponent(key)>/mcp); each value is an entry, {} to run the key as a command line. docs/whitelist.md",
  });

/** The JSON Schema of the whitelist file (written to schema/allowed-commands.schema.json). */
export function commandsJsonSchema(): Record<string, unknown> {
  const schema = z.toJSONSchema(commandsFileSchema, { io: 'input' }) as Record<string, unknown>;
  // The key rules (checkKey) a JSON Schema can state; the loader says why a key is refused.
  return { ...schema, minProperties: 1, propertyNames: { minLength: 1, maxLength: MAX_COMMAND_KEY_LENGTH, pattern: '^\\S(.*\\S)?$' } };
}
