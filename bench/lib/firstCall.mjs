// The first 2026-07-28 call of a principal that has no conversation yet, with a warm spare
// ready: the gateway takes the spare, does the 2025 handshake with it itself (initialize,
// notifications/initialized, logging/setLevel when the server logs) and forwards the call.
// Each sample needs a principal the gateway has not seen, so the gateway is started with a
// clients file of `firstCalls` tokens and each token makes exactly one call. The same steps
// straight on a fresh stdio child of the same server give the floor: what the server
// itself takes for a first handshake and a first call.
import { CLEAN_ENV, SERVERS, startTarget } from '../servers/targets.mjs';
import { RawStdioSession } from './rawClients.mjs';
import { msSince, summarize } from './stats.mjs';
import { sleep, withTimeout } from './util.mjs';

const WARMUP_CALLS = 20;
const PAYLOAD = 'first-call';
const EXPECTED = `Echo: ${PAYLOAD}`;
/** As long as the gateway side waits after the previous take (`waitWarm`). */
const SETTLE_MS = 1000;

/**
 * Starts a fresh mcp-warden for `target` (the 2026-07-28 one), warms its modern path with
 * the shared secret's own conversation (its first call opens it the same way), then, per
 * token: waits until the pool is full again and the last spare was taken 1 s ago
 * (`waitWarm`, so the previous sample's refill does not compete for the CPU), and times
 * one echo call from sending the POST to the end of its answer. Then the direct floor.
 */
export async function firstModernCallPhase(target, settings) {
  const inst = await startTarget(target, { clientTokens: settings.firstCalls, timeoutMs: settings.callTimeoutMs });
  const samples = [];
  let failures = 0;
  let fromPool = 0;
  let firstError;
  try {
    await inst.waitWarm();
    const warm = inst.session('raw');
    for (let i = 0; i < WARMUP_CALLS; i += 1) await warm.echo(PAYLOAD);
    await warm.close();
    for (const token of inst.clientTokens) {
      await inst.waitWarm();
      const sparesBefore = await inst.spares();
      const s = inst.session('raw', 'warm', token);
      const t0 = process.hrtime.bigint();
      try {
        const text = await s.echo(PAYLOAD);
        const ms = msSince(t0);
        if (text !== EXPECTED) throw new Error(`wrong echo: ${String(text).slice(0, 100)}`);
        samples.push(ms);
        // A spare taken: one fewer than before (its replacement needs far longer to boot).
        if ((await inst.spares()) < sparesBefore) fromPool += 1;
      } catch (error) {
        failures += 1;
        firstError ??= String(error.message).slice(0, 200);
      } finally {
        await withTimeout(s.close(), 5000, 'close').catch(() => {});
      }
    }
  } finally {
    await inst.stop();
  }
  const direct = await directFloor(settings);
  return { n: settings.firstCalls, warmupCalls: WARMUP_CALLS, summary: summarize(samples), samples, failures, fromPool, firstError, direct };
}

/**
 * The floor, `firstCalls` times: a fresh stdio child of the same server, started and
 * answering a ping (as the pool warms a spare), left alone for SETTLE_MS, then timed from
 * initialize to the first call's reply, with the gateway's steps in its order (initialize,
 * notifications/initialized, logging/setLevel not awaited, tools/call).
 */
async function directFloor(settings) {
  const server = SERVERS.everything;
  const samples = [];
  let failures = 0;
  let firstError;
  for (let i = 0; i < settings.firstCalls; i += 1) {
    const s = new RawStdioSession(settings.callTimeoutMs, [server.command, ...server.args], CLEAN_ENV);
    try {
      s.start();
      await s.request('ping', {});
      await sleep(SETTLE_MS);
      const t0 = process.hrtime.bigint();
      const init = await s.handshake();
      if (init?.capabilities?.logging !== undefined) s.request('logging/setLevel', { level: 'debug' }).catch(() => {});
      const text = await s.echo(PAYLOAD);
      const ms = msSince(t0);
      if (text !== EXPECTED) throw new Error(`wrong echo: ${String(text).slice(0, 100)}`);
      samples.push(ms);
    } catch (error) {
      failures += 1;
      firstError ??= String(error.message).slice(0, 200);
    } finally {
      await withTimeout(s.close(), 5000, 'close').catch(() => {});
    }
  }
  return { summary: summarize(samples), samples, failures, firstError };
}
