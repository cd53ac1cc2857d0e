/**
 * Multi round-trip requests for a 2025 child: when the child asks the client something
 * (`elicitation/create`) while a request that may take input is in flight, that request is
 * answered with an `InputRequiredResult` and the child's question is held; the client's
 * retry (a new request with `inputResponses` and the `requestState`) answers the question and
 * takes over the original request. The `requestState` is sealed and single-use; a question
 * left unanswered is cancelled after the timeout.
 */
import type { RequestId } from '@modelcontextprotocol/sdk/types.js';
import { WardenError } from '../errors.js';
import { MRTR_METHODS } from './protocol.js';
import { newNonce, requestDigest, type RequestStateSealer } from './requestState.js';

type Bag = Record<string, unknown>;

/** What a held question needs to know of the request it was put to. */
export interface Askable {
  readonly method: string;
  readonly digest: string;
  capabilities: Bag;
  held: Held | undefined;
}

export interface Held {
  readonly nonce: string;
  readonly childRequestId: RequestId;
  readonly key: string;
  readonly timer: NodeJS.Timeout;
}

export interface InputOptions {
  readonly sealer: RequestStateSealer;
  readonly principalKey: string;
  readonly inputTimeoutMs: number;
  /** On Fly.io: this machine, sealed into the requestState so the retry is routed back here. */
  readonly machine?: string;
  /** Sends a message towards the child (an answer to its question). */
  readonly toChild: (message: Bag) => void;
  /** A held question timed out: the request it was put to is given up. */
  readonly onExpired: (id: string) => void;
}

export class InputRounds {
  private readonly byNonce = new Map<string, string>();

  constructor(private readonly options: InputOptions) {}

  /** Which of `candidates` (open requests, by gateway id) can take a question of this `mode`; exactly one, or none. */
  taker<T extends Askable>(candidates: readonly [string, T][], mode: string): [string, T] | undefined {
    const takers = candidates.filter(([, e]) => {
      const elicitation = e.capabilities.elicitation as Bag | undefined;
      if (e.held || !MRTR_METHODS.has(e.method) || elicitation === undefined) return false;
      // `elicitation: {}` declares form mode only.
      return mode === 'form' ? elicitation.form !== undefined || Object.keys(elicitation).length === 0 : elicitation[mode] !== undefined;
    });
    return takers.length === 1 ? takers[0] : undefined;
  }

  /** Holds the child's question `childRequestId` for request `id`; returns the InputRequiredResult fields. */
  ask(id: string, entry: Askable, childRequest: { id: RequestId; method: string; params?: Bag }): Bag {
    const nonce = newNonce();
    const key = 'input';
    const timer = setTimeout(() => this.expire(id, entry, nonce), this.options.inputTimeoutMs);
    timer.unref();
    entry.held = { nonce, childRequestId: childRequest.id, key, timer };
    this.byNonce.set(nonce, id);
    const { _meta: _childMeta, ...params } = childRequest.params ?? {};
    const requestState = this.options.sealer.seal({
      nonce,
      principal: this.options.principalKey,
      method: entry.method,
      digest: entry.digest,
      expires: Date.now() + this.options.inputTimeoutMs,
      ...(this.options.machine === undefined ? {} : { machine: this.options.machine }),
    });
    return { resultType: 'input_required', inputRequests: { [key]: { method: childRequest.method, params } }, requestState };
  }

  /**
   * The gateway id of the request a retry continues, once its `requestState` proves it is the
   * same caller's retry of the same request; the child's question is answered with the
   * client's response. Throws `invalid_params` otherwise.
   */
  resume<T extends Askable>(method: string, params: Bag, lookup: (id: string) => T | undefined): string {
    const sealed = this.options.sealer.open(params.requestState);
    const id = sealed ? this.byNonce.get(sealed.nonce) : undefined;
    const entry = id === undefined ? undefined : lookup(id);
    if (!sealed || !entry?.held || sealed.principal !== this.options.principalKey || sealed.method !== method || sealed.digest !== requestDigest(params)) {
      throw new WardenError('invalid_params', 'requestState is not valid: expired, already used, or not issued for this request', {
        data: { field: 'requestState' },
      });
    }
    const held = entry.held;
    this.forget(entry);
    const response = (params.inputResponses as Bag | undefined)?.[held.key];
    if (response && typeof response === 'object') this.options.toChild({ jsonrpc: '2.0', id: held.childRequestId, result: response });
    else this.refuse(held.childRequestId, 'the client gave no answer to this request');
    return id!;
  }

  /** The request went away (cancelled, answered, closed): its question, if any, is answered `cancel`. */
  drop(entry: Askable, answer: Bag | undefined = { action: 'cancel' }): void {
    const held = entry.held;
    if (!held) return;
    this.forget(entry);
    if (answer) this.options.toChild({ jsonrpc: '2.0', id: held.childRequestId, result: answer });
  }

  refuse(childRequestId: RequestId, message: string): void {
    this.options.toChild({ jsonrpc: '2.0', id: childRequestId, error: { code: -32601, message } });
  }

  clear(): void {
    this.byNonce.clear();
  }

  private expire(id: string, entry: Askable, nonce: string): void {
    if (entry.held?.nonce !== nonce) return;
    this.drop(entry);
    this.options.onExpired(id);
  }

  private forget(entry: Askable): void {
    if (!entry.held) return;
    clearTimeout(entry.held.timer);
    this.byNonce.delete(entry.held.nonce);
    entry.held = undefined;
  }
}
