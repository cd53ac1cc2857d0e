/**
 * Real fixture children for unit tests of the process layer and the bridge, without a
 * gateway: a CommandSpec that runs a fixture with node, a ChildTransport spawned from it
 * (short stop stages), and a logger that keeps its entries for assertions.
 */
import Transport from 'winston-transport';
import winston from 'winston';
import { buildChildEnv, defaultChildEnvBase } from '../../src/commands/env.js';
import type { CommandSpec } from '../../src/commands/types.js';
import type { Logger } from '../../src/logging/logger.js';
import { ChildTransport, type ChildTransportOptions, type StopTimeouts } from '../../src/process/childTransport.js';
import { spawnChild } from '../../src/process/spawn.js';
import { fixturePath } from './fixtures.js';

export interface LogEntry {
  readonly level: string;
  readonly message: string;
  readonly [key: string]: unknown;
}

class ArrayTransport extends Transport {
  constructor(private readonly entries: LogEntry[]) {
    super();
  }
  override log(info: LogEntry, next: () => void): void {
    this.entries.push({ ...info });
    next();
  }
}

/** A real winston logger (every level) whose entries land in `entries`. */
export function captureLogger(): { logger: Logger; entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  return { logger: winston.createLogger({ level: 'debug', transports: [new ArrayTransport(entries)] }), entries };
}

/** The lines a child wrote on stderr, as the spawn path logged them. */
export function stderrLines(entries: readonly LogEntry[], pid?: number): string[] {
  return entries.filter((e) => e.message === 'child stderr' && (pid === undefined || e.pid === pid)).map((e) => String(e.line));
}

/** A whitelist entry, resolved, that runs test/fixtures/<file> with node. */
export function fixtureSpec(file: string, args: readonly string[] = [], extra: Partial<CommandSpec> = {}): CommandSpec {
  return {
    key: [file, ...args].join(' '),
    command: process.execPath,
    args: [fixturePath(file), ...args],
    cwd: process.cwd(),
    env: {},
    allowedEnv: [],
    description: undefined,
    ...extra,
  };
}

/** Stop stages short enough for tests, long enough for a loaded machine. */
export const TEST_STOP: StopTimeouts = { eofMs: 300, termMs: 500, killMs: 2_000 };

/** Spawns a fixture as the gateway would (argv, env from scratch, own group) and wraps it. */
export async function spawnFixture(file: string, args: readonly string[], logger: Logger, options: ChildTransportOptions = {}): Promise<ChildTransport> {
  const spec = fixtureSpec(file, args);
  const spawned = await spawnChild(spec, buildChildEnv(spec, {}, defaultChildEnvBase()), logger);
  return new ChildTransport(spawned, spec, logger, { stopTimeouts: TEST_STOP, ...options });
}

/** Resolves with the number of times `onclose` fired so far, once it fired at least once. */
export function countCloses(transport: { onclose?: (() => void) | undefined }): { readonly count: () => number; readonly fired: Promise<void> } {
  let count = 0;
  let fired!: () => void;
  const firedOnce = new Promise<void>((resolve) => (fired = resolve));
  transport.onclose = () => {
    count += 1;
    fired();
  };
  return { count: () => count, fired: firedOnce };
}
