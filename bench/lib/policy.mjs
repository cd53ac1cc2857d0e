// Policy decision time: the compiled engine from dist/ against examples/policy.sms.json,
// a realistic tools/call (role "user" on command "sms", argument rules applied), timed in
// batches of 1000 with process.hrtime.bigint().
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ROOT } from './util.mjs';
import { summarize } from './stats.mjs';

const BATCH = 1000;

export async function policyPhase(evaluations) {
  const { parsePolicy } = await import(pathToFileURL(resolve(ROOT, 'dist/policy/store.js')).href);
  const { evaluate } = await import(pathToFileURL(resolve(ROOT, 'dist/policy/engine.js')).href);
  const file = resolve(ROOT, 'examples/policy.sms.json');
  const policy = parsePolicy(readFileSync(file, 'utf8'), file);
  const cases = {
    allowed: {
      role: 'user',
      message: {
        jsonrpc: '2.0',
        id: 42,
        method: 'tools/call',
        params: { name: 'post_sms_3_messages', arguments: { to: '+15551234567', body: 'Your verification code is 482913. It expires in 10 minutes.' } },
      },
      expect: 'allow',
    },
    denied: {
      role: 'user',
      message: { jsonrpc: '2.0', id: 43, method: 'tools/call', params: { name: 'delete_all_contacts', arguments: {} } },
      expect: 'deny',
    },
  };
  const out = { file: 'examples/policy.sms.json', evaluations };
  for (const [name, c] of Object.entries(cases)) {
    const first = evaluate(c.message, c.role, 'sms', policy);
    if (first.action !== c.expect) throw new Error(`policy case ${name}: expected ${c.expect}, got ${JSON.stringify(first)}`);
    let sink = 0;
    for (let i = 0; i < 20_000; i += 1) sink += evaluate(c.message, c.role, 'sms', policy).action.length; // warm-up (JIT)
    const batches = Math.max(1, Math.round(evaluations / BATCH));
    const perCallUs = [];
    for (let b = 0; b < batches; b += 1) {
      const t0 = process.hrtime.bigint();
      for (let i = 0; i < BATCH; i += 1) sink += evaluate(c.message, c.role, 'sms', policy).action.length;
      perCallUs.push(Number(process.hrtime.bigint() - t0) / 1000 / BATCH);
    }
    const s = summarize(perCallUs);
    out[name] = { p50Us: s.p50, meanUs: s.mean, p99Us: s.p99, batches, sink };
  }
  return out;
}
