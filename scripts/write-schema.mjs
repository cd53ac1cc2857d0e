// Writes schema/policy.schema.json from the zod schema in src/policy/schema.ts (run after build).
import { writeFileSync } from 'node:fs';
import { policyJsonSchema } from '../dist/policy/schema.js';

const schema = policyJsonSchema();
writeFileSync(new URL('../schema/policy.schema.json', import.meta.url), `${JSON.stringify(schema, null, 2)}\n`);
