/**
 * Answers that make Fly's proxy re-deliver a request elsewhere (`fly-replay`), and the rules
 * they obey. The proxy replays the original request, headers and body, to the machine named
 * (`instance=<id>`) or to any other (`elsewhere=true`), adding `fly-replay-src`; it cannot
 * replay a body over 1 MB. A request that was already replayed (`fly-replay-src`), or that
 * came back because its replay failed (`fly-replay-failed`), is served where it lands:
 * nothing is replayed twice. Decisions read headers only, never the body.
 */
import type { IncomingMessage } from 'node:http';
import { WardenError } from '../errors.js';

/** The largest body Fly's proxy replays, in bytes (its "1 MB", read conservatively). */
export const REPLAY_BODY_LIMIT = 1_000_000;

/** True when Fly's proxy already replayed this request here (or brought it back after a failed replay). */
export function wasReplayed(req: IncomingMessage): boolean {
  return req.headers['fly-replay-src'] !== undefined || req.headers['fly-replay-failed'] !== undefined;
}

/** Why this request cannot be replayed (its body is chunked or over the limit); undefined when it can. */
export function unreplayable(req: IncomingMessage): WardenError | undefined {
  const why = "it belongs to another machine, and Fly's proxy replays a request there only with a body of at most";
  if (req.headers['transfer-encoding'] !== undefined) {
    return new WardenError('length_required', `Length Required: ${why} ${REPLAY_BODY_LIMIT} bytes, so the request must declare its Content-Length`, {
      data: { limitBytes: REPLAY_BODY_LIMIT },
    });
  }
  const length = Number(req.headers['content-length'] ?? 0);
  if (length > REPLAY_BODY_LIMIT) {
    return new WardenError('payload_too_large', `Payload Too Large: ${why} ${REPLAY_BODY_LIMIT} bytes`, {
      data: { limitBytes: REPLAY_BODY_LIMIT, replay: true },
    });
  }
  return undefined;
}

/**
 * The answer that sends a request to `machine`: `421 misdirected` carrying
 * `fly-replay: instance=<machine>`, which the proxy acts on (the client never sees it). Should
 * the replay fail (the machine just stopped), `fallback=force_self` brings the request back
 * here with `fly-replay-failed`, to be answered as landed (a 404 for a session, a fresh
 * conversation for a 2026-07-28 request) instead of the proxy's error page.
 */
export function replayTo(machine: string, what: string): WardenError {
  return new WardenError('misdirected', `Misdirected Request: ${what} is served by another machine; Fly's proxy replays the request there`, {
    headers: { 'fly-replay': `instance=${machine};fallback=force_self` },
  });
}

/** The header a draining machine adds to send a new session's first request to another machine. */
export const ELSEWHERE: Readonly<Record<string, string>> = { 'fly-replay': 'elsewhere=true' };
