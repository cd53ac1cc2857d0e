/**
 * The policy file, validated with zod. Simple form: top-level `default` and `tools`
 * allow/deny globs. Full form adds `roles`, per-command sections (`commands`), argument
 * rules, resource and prompt rules, rate limits, redaction and audit options.
 * `schema/policy.schema.json` is generated from this (npm run schema).
 */
import { z } from 'zod';

const glob = z.string().min(1).max(256).describe('Glob: `*` matches any characters, `?` one; everything else is literal');
const globs = z.array(glob);
const decision = z.enum(['allow', 'deny']);

const rules = z
  .strictObject({
    allow: globs.optional().describe('Names (globs) allowed by this section'),
    deny: globs.optional().describe('Names (globs) denied by this section; within a section deny beats allow'),
  })
  .describe('Allow and deny lists');

const argRule = z
  .strictObject({
    required: z.boolean().optional().describe('The argument must be present'),
    type: z.enum(['string', 'number', 'integer', 'boolean', 'object', 'array', 'null']).optional(),
    maxLength: z.number().int().nonnegative().optional().describe('Strings: most characters; arrays: most items'),
    pattern: z.string().optional().describe('Regex a string value must match'),
    notPattern: z.string().optional().describe('Regex a string value must not match'),
    enum: z
      .array(z.union([z.string(), z.number(), z.boolean(), z.null()]))
      .optional()
      .describe('Allowed values'),
  })
  .describe('Rule for one argument');

const toolArguments = z
  .strictObject({
    maxTotalBytes: z.number().int().positive().optional().describe('Most bytes of the JSON-encoded arguments object'),
    args: z.record(z.string(), argRule).optional().describe('Rules per argument name'),
    additionalArgs: z.boolean().optional().describe('false: arguments not named in `args` are denied'),
  })
  .describe('Argument rules for one tool');

const rateLimit = z
  .strictObject({
    calls: z.number().int().positive(),
    perSeconds: z.number().int().positive(),
    per: z.enum(['client', 'role']).optional().describe('Whose budget: each client (default) or the whole role'),
  })
  .describe('At most `calls` per `perSeconds`');

const sectionShape = {
  default: decision.optional().describe('Decision when no rule of this or a more specific section matched'),
  tools: rules.optional().describe('tools/call and tools/list'),
  resources: rules.optional().describe('resources/read (by URI; a file: URI by its POSIX-normalised path, see docs/policy.md) and resources/list'),
  prompts: rules.optional().describe('prompts/get and prompts/list'),
  arguments: z.record(z.string(), toolArguments).optional().describe('Argument rules by exact tool name'),
  rateLimits: z.record(glob, rateLimit).optional().describe('Tool-call rate limits by tool glob'),
};

const roleName = z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'a role name is 1 to 64 letters, digits, dots, underscores or hyphens');
export const sectionSchema = z.strictObject(sectionShape);
const commandSectionSchema = z.strictObject({
  ...sectionShape,
  roles: z.record(roleName, sectionSchema).optional().describe('Role sections inside this command'),
});

const redaction = z.strictObject({
  enabled: z.boolean().optional().describe('Redact secrets in everything a child sends to a client (default true); see docs/redaction.md'),
  builtin: z.boolean().optional().describe('Use the built-in detectors (default true)'),
  patterns: z
    .array(
      z.strictObject({
        name: z.string().regex(/^[A-Za-z0-9_-]{1,40}$/, 'a pattern name is 1 to 40 letters, digits, underscores or hyphens'),
        regex: z.string().min(1),
        flags: z
          .string()
          .regex(/^[imsu]*$/, 'flags are any of the letters i, m, s and u')
          .optional(),
      }),
    )
    .optional()
    .describe('Extra detectors'),
  exceptTools: globs.optional().describe('Tools whose results are not redacted (their results only: their errors and notifications still are)'),
});

export const policySchema = z
  .strictObject({
    $schema: z.string().optional(),
    name: z.string().min(1).max(100).optional().describe('Shown in logs, /status and audit records (default: the file name without .json)'),
    version: z.union([z.string().max(100), z.number()]).optional(),
    mode: z.enum(['enforce', 'shadow']).optional().describe('shadow: evaluate and audit, never block (default enforce)'),
    ...sectionShape,
    roles: z.record(roleName, sectionSchema).optional().describe('Sections per role'),
    commands: z.record(z.string().min(1), commandSectionSchema).optional().describe('Sections per whitelist key'),
    redaction: redaction.optional(),
    audit: z.strictObject({ includeArguments: z.boolean().optional() }).optional(),
  })
  .describe('mcp-warden tool policy');

export type Policy = z.infer<typeof policySchema>;
export type PolicySection = z.infer<typeof sectionSchema>;
export type ArgRule = z.infer<typeof argRule>;
export type ToolArguments = z.infer<typeof toolArguments>;
export type RateLimitRule = z.infer<typeof rateLimit>;

export function policyJsonSchema(): unknown {
  return z.toJSONSchema(policySchema, { io: 'input' });
}
