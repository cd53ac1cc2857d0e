// Writes the JSON Schemas from their zod schemas (run after build):
// schema/policy.schema.json from src/policy/schema.ts, and
// schema/allowed-commands.schema.json from src/config/commandsSchema.ts.
import { writeFileSync } from 'node:fs';
import { commandsJsonSchema } from '../dist/config/commandsSchema.js';
import { policyJsonSchema } from '../dist/policy/schema.js';

const write = (name, schema) => writeFileSync(new URL(`../schema/${name}`, import.meta.url), `${JSON.stringify(schema, null, 2)}\n`);
write('policy.schema.json', policyJsonSchema());
write('allowed-commands.schema.json', commandsJsonSchema());
