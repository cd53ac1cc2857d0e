/**
 * What every Redis user here shares: where a URL points (without its credentials, for logs
 * and errors), and a bounded first connection of a `lazyConnect` client.
 */
import type { Redis } from 'ioredis';

/** Shows where a Redis URL points without its credentials. */
export function redactRedisUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname === '/' ? '' : parsed.pathname}`;
  } catch {
    return '(unparsable URL)';
  }
}

/**
 * Connects `client` within `timeoutMs`. On failure it is disconnected and the error names
 * `where`, what the connection was `for` (if anything), and the last error the client
 * reported (`lastError`, kept by the caller's 'error' listener) or else the failure itself.
 */
export async function connectWithin(
  client: Redis,
  opts: { where: string; for?: string; timeoutMs: number; lastError: () => Error | undefined },
): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      client.connect(),
      new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${opts.timeoutMs} ms`)), opts.timeoutMs);
      }),
    ]);
  } catch (error) {
    client.disconnect();
    const detail = opts.lastError()?.message ?? (error instanceof Error ? error.message : String(error));
    throw new Error(`cannot connect to Redis at ${opts.where}${opts.for ? ` ${opts.for}` : ''}: ${detail}`);
  } finally {
    clearTimeout(timer);
  }
}
