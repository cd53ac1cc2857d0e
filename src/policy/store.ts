/**
 * Loads the policy file, validates it (an error says where and what to write) and reloads
 * it when the file changes. A bad edit keeps the last good policy and logs why.
 */
import { readFileSync, unwatchFile, watchFile, type StatWatcher } from 'node:fs';
import { basename } from 'node:path';
import type { Logger } from '../logging/logger.js';
import { compilePolicy, PolicyError, type CompiledPolicy } from './compile.js';
import { explainIssues, formatPath } from './explain.js';
import { nearest } from './nearest.js';
import { policySchema, type Policy } from './schema.js';

export interface ParsePolicyOptions {
  /**
   * The whitelist's keys: a `commands` section for any other key is refused, naming the
   * nearest key (a misspelt key would otherwise leave that server without its rules).
   * A function is asked at each load (the whitelist can change while running). Unset: not checked.
   */
  readonly commandKeys?: readonly string[] | (() => readonly string[]);
}

/** The policy's name when the file gives none: the file name without `.json`. */
function defaultName(source: string): string {
  return (
    basename(source)
      .replace(/\.json$/i, '')
      .slice(0, 100) || 'policy'
  );
}

function checkCommandKeys(policy: Policy, keys: readonly string[], source: string): void {
  for (const key of Object.keys(policy.commands ?? {})) {
    if (keys.includes(key)) continue;
    const where = formatPath(['commands', key]);
    const best = nearest(key, keys);
    const hint = best ? `did you mean ${JSON.stringify(best.name)}?` : 'the whitelist is empty';
    const listed = keys.length > 0 && keys.length <= 10 ? ` (the whitelist keys: ${keys.map((k) => JSON.stringify(k)).join(', ')})` : '';
    throw new PolicyError(`${source}: ${where}: ${JSON.stringify(key)} is not a key of the whitelist, so these rules would apply to nothing; ${hint}${listed}`);
  }
}

export function parsePolicy(text: string, source: string, options: ParsePolicyOptions = {}): CompiledPolicy {
  let json: unknown;
  try {
    json = JSON.parse(text, (key, value: unknown) => {
      if (key === '__proto__') throw new PolicyError('"__proto__" is not allowed as a key');
      return value;
    });
  } catch (error) {
    if (error instanceof PolicyError) throw new PolicyError(`${source}: ${error.message}`);
    throw new PolicyError(`${source}: invalid JSON: ${(error as Error).message}`);
  }
  const result = policySchema.safeParse(json);
  if (!result.success) throw new PolicyError(explainIssues(result.error.issues, json, policySchema, source));
  const keys = typeof options.commandKeys === 'function' ? options.commandKeys() : options.commandKeys;
  if (keys) checkCommandKeys(result.data, keys, source);
  try {
    return compilePolicy({ ...result.data, name: result.data.name ?? defaultName(source) });
  } catch (error) {
    throw new PolicyError(`${source}: ${(error as Error).message}`);
  }
}

export interface PolicyStoreOptions extends ParsePolicyOptions {
  readonly logger: Logger;
  /** How often the file is checked for changes, ms. @default 1000 */
  readonly pollMs?: number;
}

export class PolicyStore {
  onReload: ((policy: CompiledPolicy) => void) | undefined;
  private policy: CompiledPolicy;
  private watcher: StatWatcher | undefined;

  private constructor(
    readonly path: string,
    initial: CompiledPolicy,
    private readonly options: PolicyStoreOptions,
  ) {
    this.policy = initial;
  }

  /** Reads and validates `path`; throws PolicyError (naming the key) when invalid. */
  static load(path: string, options: PolicyStoreOptions): PolicyStore {
    let text: string;
    try {
      text = readFileSync(path, 'utf8');
    } catch (error) {
      throw new PolicyError(`${path}: cannot read file: ${(error as Error).message}`);
    }
    return new PolicyStore(path, parsePolicy(text, path, options), options);
  }

  get current(): CompiledPolicy {
    return this.policy;
  }

  /** Starts watching the file; each change is validated before it replaces the policy. */
  watch(): void {
    if (this.watcher) return;
    this.watcher = watchFile(this.path, { interval: this.options.pollMs ?? 1000, persistent: false }, (now, before) => {
      if (now.mtimeMs === before.mtimeMs && now.size === before.size) return;
      this.reload();
    });
  }

  /** Re-reads the file now. Returns true when the new policy took effect. */
  reload(): boolean {
    try {
      const next = parsePolicy(readFileSync(this.path, 'utf8'), this.path, this.options);
      this.policy = next;
      this.options.logger.info('policy reloaded', { policy: next.name, version: next.version, mode: next.mode });
      this.onReload?.(next);
      return true;
    } catch (error) {
      this.options.logger.error('policy reload rejected; keeping the last good policy', {
        policy: this.policy.name,
        error: (error as Error).message,
      });
      return false;
    }
  }

  close(): void {
    if (!this.watcher) return;
    unwatchFile(this.path);
    this.watcher = undefined;
  }
}
