/**
 * The running gateway's whitelist: follows its source (the file, or Redis) and applies each
 * new version to the registry at once. A new entry serves at once and gets its warm spares;
 * a changed entry serves new sessions with its new spec (its old spares and shared children
 * are retired); a removed entry refuses new sessions with 404 while its live sessions finish,
 * or are ended (`--on-remove end`). A version that does not validate changes nothing: the
 * last good table stays, and the error log names the entry and the problem.
 */
import type { AuditRecorder } from '../audit/recorder.js';
import type { CommandRegistry } from '../commands/registry.js';
import type { CommandSpec } from '../commands/types.js';
import { CommandsFileError } from '../config/commands.js';
import type { Logger } from '../logging/logger.js';
import type { SessionStore } from '../transports/sessions.js';
import { validateDocument, type WhitelistDocument } from './document.js';
import type { Edited } from './edit.js';
import { Serial, type WhitelistSource } from './source.js';

/** What happens to live sessions of a removed entry (`--on-remove`). */
export type OnRemove = 'finish' | 'end';

/** The process side of a reload (ProcessManager). */
export interface WhitelistProcesses {
  warm(specs: readonly CommandSpec[]): void;
  retire(key: string): void;
}

export interface LiveWhitelistDeps {
  readonly registry: CommandRegistry;
  readonly source: WhitelistSource;
  readonly processes: WhitelistProcesses;
  readonly sessions: SessionStore;
  readonly logger: Logger;
  readonly audit?: AuditRecorder;
  /** @default finish */
  readonly onRemove?: OnRemove;
}

/** What one new version changed. */
export interface WhitelistChange {
  readonly added: readonly string[];
  readonly changed: readonly string[];
  readonly removed: readonly string[];
  /** Live sessions of removed entries when they were removed (ended with `--on-remove end`). */
  readonly sessionsOfRemoved: number;
}

/** Same runtime meaning: an unchanged entry keeps its spec object (and so its spares). */
function sameSpec(a: CommandSpec, b: CommandSpec): boolean {
  return JSON.stringify(a) === JSON.stringify(b);
}

export class LiveWhitelist {
  /** Told of every version that changed something (tests, metrics). */
  onChange: ((change: WhitelistChange) => void) | undefined;
  readonly #serial = new Serial();
  #closed = false;

  constructor(private readonly deps: LiveWhitelistDeps) {}

  get source(): WhitelistSource {
    return this.deps.source;
  }

  /** Follows the source from now on. */
  watch(): void {
    this.deps.source.watch(() => void this.reload());
  }

  /** Reads the source and applies it; false (and an error log) when it did not validate. */
  reload(): Promise<boolean> {
    return this.#serial.run(async () => {
      if (this.#closed) return false;
      const { source, logger } = this.deps;
      let specs: CommandSpec[];
      try {
        specs = validateDocument(await source.read(), source.file, source.name);
      } catch (error) {
        const entry = error instanceof CommandsFileError ? error.key : undefined;
        logger.error('whitelist reload rejected; keeping the last good whitelist', {
          source: source.name,
          ...(entry === undefined ? {} : { entry }),
          error: (error as Error).message,
        });
        return false;
      }
      this.#apply(specs, 'reload');
      return true;
    });
  }

  /**
   * Stores an edit through the source and applies its result here at once (other machines
   * follow through the source).
   * @param by who asked (a client id), for the log and the audit trail.
   */
  edit<T extends Edited>(edit: (doc: WhitelistDocument) => T, by: string): Promise<T & { readonly change: WhitelistChange | undefined }> {
    return this.#serial.run(async () => {
      const result = await this.deps.source.update(edit);
      return { ...result, change: this.#apply(result.specs, 'admin', by) };
    });
  }

  /** Stops following the source. Idempotent. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.deps.source.close();
  }

  #apply(specs: readonly CommandSpec[], origin: 'reload' | 'admin', by?: string): WhitelistChange | undefined {
    const { registry, processes, sessions, logger } = this.deps;
    if (this.#closed) return undefined; // the gateway is closing: nothing new starts
    const before = new Map(registry.specs().map((spec) => [spec.key, spec]));
    const next = specs.map((spec) => {
      const previous = before.get(spec.key);
      return previous && sameSpec(previous, spec) ? previous : spec;
    });
    const keys = new Set(next.map((spec) => spec.key));
    const added = next.filter((spec) => !before.has(spec.key));
    const changed = next.filter((spec) => before.has(spec.key) && before.get(spec.key) !== spec);
    const removed = [...before.keys()].filter((key) => !keys.has(key));
    const reordered = next.some((spec, index) => registry.keys()[index] !== spec.key);
    if (added.length === 0 && changed.length === 0 && removed.length === 0 && !reordered) {
      logger.debug('whitelist unchanged', { source: this.deps.source.name });
      return undefined;
    }
    registry.replace(next);
    for (const key of [...removed, ...changed.map((spec) => spec.key)]) processes.retire(key);
    processes.warm([...added, ...changed]);
    let sessionsOfRemoved = 0;
    for (const key of removed) {
      for (const session of sessions.all()) {
        if (session.commandKey !== key) continue;
        sessionsOfRemoved += 1;
        if (this.deps.onRemove === 'end') void session.close('its whitelist entry was removed').catch(() => undefined);
      }
    }
    const change: WhitelistChange = { added: added.map((spec) => spec.key), changed: changed.map((spec) => spec.key), removed, sessionsOfRemoved };
    const fields = {
      source: this.deps.source.name,
      ...change,
      onRemove: this.deps.onRemove ?? 'finish',
      ...(by === undefined ? {} : { by }),
    };
    logger.info(origin === 'admin' ? 'whitelist edited' : 'whitelist reloaded', fields);
    this.deps.audit?.record('whitelist_change', fields);
    this.onChange?.(change);
    return change;
  }
}
