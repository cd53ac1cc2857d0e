/**
 * Which era each whitelist entry's server speaks: modern (2026-07-28: `server/discover`,
 * per-request `_meta`, no initialize) or legacy (2025-11-25 and earlier: the initialize
 * handshake). Learnt once per entry by probing the first child started for it with
 * `server/discover` (the specification's stdio backward-compatibility check), then cached
 * under the entry's key, command, args, cwd and env: an entry the admin changed is probed
 * again. docs/processes.md, "The era probe".
 */
import { DiscoverResultSchema } from '@modelcontextprotocol/core';
import type { CommandSpec } from '../commands/types.js';
import { ERROR_TABLE } from '../errors.js';
import type { Logger } from '../logging/logger.js';
import { META, MODERN_VERSION } from '../modern/protocol.js';
import { PACKAGE_NAME, PACKAGE_VERSION } from '../version.js';
import { ERA_PROBE_ID, type ChildTransport, type OwnReply } from './childTransport.js';

export type Era = 'modern' | 'legacy';
export type DiscoverResult = ReturnType<typeof DiscoverResultSchema.parse>;

export interface EraVerdict {
  readonly era: Era;
  /** The server's answer to the probe, when it gave one (a modern server may answer -32022 instead). */
  readonly discover?: DiscoverResult;
}

export interface EraRegistryOptions {
  readonly logger: Logger;
  /** How long a probe waits for its answer, ms; 0: no probe, every entry is legacy. @default 2000 */
  readonly probeMs?: number;
}

const DEFAULT_ERA_PROBE_MS = 2_000;

const LEGACY: EraVerdict = Object.freeze({ era: 'legacy' });

/** The `_meta` envelope of the probe: the version asked for, the gateway's identity, no client capabilities. */
const PROBE_PARAMS = {
  _meta: {
    [META.protocolVersion]: MODERN_VERSION,
    [META.clientInfo]: { name: PACKAGE_NAME, version: PACKAGE_VERSION },
    [META.clientCapabilities]: {},
  },
};

/**
 * The verdict on one probe. Modern: a DiscoverResult listing MODERN_VERSION, or the
 * unsupported-version error (-32022) whose `data.supported` lists it. Legacy: any other
 * answer or error, no answer in time, or an exit (servers may answer an unknown
 * pre-initialize request with any code, or not at all: the fallback is not keyed to one).
 */
export function verdictOf(reply: OwnReply): EraVerdict {
  if (reply.outcome !== 'answer') return LEGACY;
  const message = reply.message as { result?: unknown; error?: { code?: unknown; data?: unknown } };
  if (message.result !== undefined) {
    const parsed = DiscoverResultSchema.safeParse(message.result);
    return parsed.success && parsed.data.supportedVersions.includes(MODERN_VERSION) ? { era: 'modern', discover: parsed.data } : LEGACY;
  }
  const error = message.error;
  const supported = (error?.data as { supported?: unknown } | undefined)?.supported;
  if (error?.code === ERROR_TABLE.unsupported_protocol_version.rpc && Array.isArray(supported) && supported.includes(MODERN_VERSION)) {
    return { era: 'modern' };
  }
  return LEGACY;
}

/** What identifies a whitelist entry for the cache: a changed entry is a different server. */
function entryKey(spec: CommandSpec): string {
  return JSON.stringify([spec.key, spec.command, spec.args, spec.cwd, spec.env]);
}

export class EraRegistry {
  private readonly verdicts = new Map<string, EraVerdict>();
  private readonly probing = new Map<string, Promise<EraVerdict>>();
  private readonly probeMs: number;

  constructor(private readonly options: EraRegistryOptions) {
    this.probeMs = options.probeMs ?? DEFAULT_ERA_PROBE_MS;
  }

  /** The entry's era, or undefined while no child of it has been probed. */
  era(spec: CommandSpec): Era | undefined {
    return this.verdict(spec)?.era;
  }

  /** The entry's DiscoverResult, when its server is modern and answered the probe with one. */
  discover(spec: CommandSpec): DiscoverResult | undefined {
    return this.verdict(spec)?.discover;
  }

  verdict(spec: CommandSpec): EraVerdict | undefined {
    return this.probeMs === 0 ? LEGACY : this.verdicts.get(entryKey(spec));
  }

  /** The probe of this entry under way on some child, if any. */
  pending(spec: CommandSpec): Promise<EraVerdict> | undefined {
    return this.probing.get(entryKey(spec));
  }

  /** Forgets the entry's verdict (it turned out wrong), so its next child is probed again. */
  forget(spec: CommandSpec): void {
    this.verdicts.delete(entryKey(spec));
  }

  /**
   * Settles the era of `child`'s entry and stamps it on the child (`child.era`): a known
   * verdict at once; a probe under way on another child of the entry is waited for;
   * otherwise this child is probed (`child.probed`). Call it before the child is started.
   * Never rejects: a child that cannot take the probe makes its entry legacy.
   */
  async probe(child: ChildTransport): Promise<EraVerdict> {
    const known = this.verdict(child.spec);
    if (known) {
      child.era = known.era;
      return known;
    }
    const key = entryKey(child.spec);
    let run = this.probing.get(key);
    if (!run) {
      run = this.run(child, key).finally(() => this.probing.delete(key));
      this.probing.set(key, run);
    }
    const verdict = await run;
    child.era = verdict.era;
    return verdict;
  }

  private async run(child: ChildTransport, key: string): Promise<EraVerdict> {
    child.probed = true;
    const reply = await child.ask(ERA_PROBE_ID, 'server/discover', PROBE_PARAMS, this.probeMs);
    const verdict = verdictOf(reply);
    this.verdicts.set(key, verdict);
    const code = reply.outcome === 'answer' ? (reply.message as { error?: { code?: unknown } }).error?.code : undefined;
    this.options.logger.info('era probe', {
      command: child.spec.key,
      pid: child.pid,
      era: verdict.era,
      outcome: reply.outcome,
      ...(typeof code === 'number' ? { code } : {}),
    });
    return verdict;
  }
}
