/**
 * `resources/subscribe` on a shared child, kept per session. The child holds one
 * subscription per uri for all its sessions: the first session to subscribe sends it (and
 * gets the child's answer), later ones are counted and answered here, the last one to leave
 * (by `resources/unsubscribe` or by ending) sends the child's `resources/unsubscribe`.
 * `notifications/resources/updated` goes to the sessions counted for its uri only.
 *
 * The operations on one uri run one after another, so a session subscribing while the first
 * subscribe is at the child gets the child's verdict, not a guess. A session claims a uri
 * when it asks (that is what the per-session limit counts) and is counted for it once the
 * child has agreed.
 */
import { LimitReachedError, errorBody } from '../errors.js';

/** What a request is answered with: the child's result or error, or one made here. */
export type Outcome =
  { readonly result: Record<string, unknown> } | { readonly error: { readonly code: number; readonly message: string; readonly data?: unknown } };

/** Sends a request of the gateway's own to the child; resolves with its answer. */
export type AskChild = (method: string, params: Record<string, unknown>) => Promise<Outcome>;

export const ANSWERED: Outcome = { result: {} };

export class SharedSubscriptions<Session> {
  /** uri -> the sessions the child agreed to subscribe for. */
  private readonly holders = new Map<string, Set<Session>>();
  /** session -> the uris it asked for (granted or on the way). */
  private readonly claims = new Map<Session, Set<string>>();
  /** uri -> the tail of its operations. */
  private readonly queues = new Map<string, Promise<unknown>>();

  /**
   * @param ask sends the child's own subscribe/unsubscribe
   * @param attached whether a session is still open (one that left is not counted)
   * @param max uris one session may hold at once
   */
  constructor(
    private readonly ask: AskChild,
    private readonly attached: (session: Session) => boolean,
    private readonly max: number,
  ) {}

  /** The sessions subscribed to `uri`. */
  subscribers(uri: string): ReadonlySet<Session> {
    return this.holders.get(uri) ?? new Set();
  }

  subscribe(session: Session, uri: string): Promise<Outcome> {
    let claimed = this.claims.get(session);
    if (!claimed) this.claims.set(session, (claimed = new Set()));
    if (!claimed.has(uri) && claimed.size >= this.max) {
      return Promise.resolve({ error: errorBody(new LimitReachedError('resources/subscribe uris per session', this.max)).error });
    }
    claimed.add(uri);
    return this.serial(uri, () => this.join(session, uri));
  }

  unsubscribe(session: Session, uri: string): Promise<Outcome> {
    this.claims.get(session)?.delete(uri);
    return this.serial(uri, () => this.part(session, uri));
  }

  /** A session ended: it gives up every uri it asked for. */
  leave(session: Session): void {
    const claimed = this.claims.get(session);
    this.claims.delete(session);
    for (const uri of claimed ?? []) this.serial(uri, () => this.part(session, uri)).catch(() => undefined);
  }

  private async join(session: Session, uri: string): Promise<Outcome> {
    if (!this.attached(session)) return ANSWERED; // left while waiting its turn
    const holding = this.holders.get(uri);
    if (holding) {
      holding.add(session);
      return ANSWERED;
    }
    let outcome: Outcome;
    try {
      outcome = await this.ask('resources/subscribe', { uri });
    } catch (error) {
      this.claims.get(session)?.delete(uri);
      throw error;
    }
    if ('result' in outcome) this.holders.set(uri, new Set([session]));
    else this.claims.get(session)?.delete(uri);
    // A session that left meanwhile has a part() queued behind this: it unsubscribes the child.
    return outcome;
  }

  private async part(session: Session, uri: string): Promise<Outcome> {
    const holding = this.holders.get(uri);
    if (!holding?.delete(session) || holding.size > 0) return ANSWERED;
    this.holders.delete(uri);
    return this.ask('resources/unsubscribe', { uri });
  }

  /** Runs `operation` after every earlier one on `uri` settled. */
  private serial<T>(uri: string, operation: () => Promise<T>): Promise<T> {
    const run = (this.queues.get(uri) ?? Promise.resolve()).then(operation);
    const tail = run.then(
      () => undefined,
      () => undefined,
    );
    this.queues.set(uri, tail);
    void tail.then(() => {
      if (this.queues.get(uri) === tail) this.queues.delete(uri);
    });
    return run;
  }
}
