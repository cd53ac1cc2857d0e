/**
 * Sessions on a real shared child (mux-server) through the Multiplexer, without a
 * gateway: each session is a MultiplexedPort with what it received and how often its
 * onclose fired.
 */
import type { JSONRPCMessage, RequestId } from '@modelcontextprotocol/sdk/types.js';
import type { Logger } from '../../src/logging/logger.js';
import { Multiplexer, type MultiplexedPort, type MultiplexerOptions } from '../../src/process/multiplexer.js';
import { countCloses, spawnFixture } from './children.js';
import { MessageLog, withId } from './fakeTransports.js';

export interface MuxSession {
  readonly port: MultiplexedPort;
  readonly received: MessageLog<JSONRPCMessage>;
  readonly closes: ReturnType<typeof countCloses>;
  /** Sends tools/call `name` with id `id` (and `meta` as params._meta). */
  send(id: RequestId, name: string, args?: Record<string, unknown>, meta?: Record<string, unknown>): Promise<void>;
  /** Calls a tool and resolves with the reply (result or error). */
  call(id: RequestId, name: string, args?: Record<string, unknown>, meta?: Record<string, unknown>): Promise<JSONRPCMessage>;
}

/** The text of a tools/call result. */
export function textOf(reply: JSONRPCMessage): string {
  const result = (reply as { result?: { content?: { text?: string }[] } }).result;
  const text = result?.content?.[0]?.text;
  if (text === undefined) throw new Error(`not a text result: ${JSON.stringify(reply)}`);
  return text;
}

/** Starts mux-server (with `args`) behind a Multiplexer (initialized, ready for sessions). */
export async function startMux(logger: Logger, args: readonly string[] = [], options: MultiplexerOptions = {}): Promise<Multiplexer> {
  const child = await spawnFixture('mux-server.mjs', args, logger);
  const mux = new Multiplexer(child, logger, options);
  await mux.start(10_000);
  return mux;
}

export async function openSession(mux: Multiplexer): Promise<MuxSession> {
  const port = mux.open();
  const received = new MessageLog<JSONRPCMessage>();
  port.onmessage = (message) => received.push(message);
  const closes = countCloses(port);
  await port.start();
  const send = (id: RequestId, name: string, args: Record<string, unknown> = {}, meta?: Record<string, unknown>) =>
    port.send({ jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: args, ...(meta ? { _meta: meta } : {}) } });
  return {
    port,
    received,
    closes,
    send,
    async call(id, name, args, meta) {
      await send(id, name, args, meta);
      return received.next(withId(id), `reply to ${name} (id ${String(id)})`);
    },
  };
}

export interface MuxStats {
  readonly initializes: number;
  readonly clientInfo: { name: string; version: string };
  /** Request ids as the child saw them. */
  readonly cancelled: RequestId[];
  readonly slow: Record<string, string>;
  readonly waiting: string[];
  /** resources/subscribe and resources/unsubscribe uris, in the order the child got them. */
  readonly subscribes: string[];
  readonly unsubscribes: string[];
  /** The uris the child is subscribed to now. */
  readonly subscribed: string[];
  /** Every logging/setLevel level the child got, in order. */
  readonly levels: string[];
}

let statsId = 0;

/** The child's own score (through `session`, with an id of its own). */
export async function muxStats(session: MuxSession): Promise<MuxStats> {
  statsId += 1;
  return JSON.parse(textOf(await session.call(`stats-${statsId}`, 'stats'))) as MuxStats;
}
