/**
 * What a session's bridge needs from "its child": a Transport with a pid, a reason when it
 * ended, and its stdin backlog. A dedicated ChildTransport is one; a port on a shared
 * (multiplexed) child is another.
 */
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { CommandSpec } from '../commands/types.js';
import type { WardenError } from '../errors.js';

export interface ChildPort extends Transport {
  readonly pid: number;
  readonly spec: CommandSpec;
  /** Why the child (or the port) ended: the error in-flight requests receive. */
  readonly closeError: WardenError | undefined;
  /** Bytes queued to the child's stdin. */
  readonly writableLength: number;
  /** True when the session did not wait for a spawn (warm spare or shared child). */
  readonly pooled: boolean;
}
