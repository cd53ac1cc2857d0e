/**
 * `subscriptions/listen`: a client's long-lived stream of list-changed and resource-update
 * notifications. The acknowledgement comes first, naming what the server behind the key can
 * honour of the client's filter; then each notification the filter asked for, tagged with
 * the listen request's id as its `subscriptionId`. Resource subscriptions are held at the
 * child once per URI, however many listens ask for it.
 */
import type { ServerResponse } from 'node:http';
import { EventStream, messageEvent } from '../transports/eventStream.js';
import { META } from './protocol.js';

type Bag = Record<string, unknown>;

export interface ListenFilter {
  readonly toolsListChanged?: boolean;
  readonly promptsListChanged?: boolean;
  readonly resourcesListChanged?: boolean;
  readonly resourceSubscriptions?: readonly string[];
}

/** The filter narrowed to what a server with `capabilities` can deliver. */
export function honoredFilter(asked: unknown, capabilities: Bag): ListenFilter {
  const filter = (typeof asked === 'object' && asked !== null ? asked : {}) as Bag;
  const caps = (name: string) => (capabilities[name] ?? undefined) as Bag | undefined;
  const out: Record<string, unknown> = {};
  if (filter.toolsListChanged === true && caps('tools')?.listChanged === true) out.toolsListChanged = true;
  if (filter.promptsListChanged === true && caps('prompts')?.listChanged === true) out.promptsListChanged = true;
  if (filter.resourcesListChanged === true && caps('resources')?.listChanged === true) out.resourcesListChanged = true;
  if (Array.isArray(filter.resourceSubscriptions) && caps('resources')?.subscribe === true) {
    const uris = filter.resourceSubscriptions.filter((u): u is string => typeof u === 'string').slice(0, 256);
    if (uris.length > 0) out.resourceSubscriptions = [...new Set(uris)];
  }
  return out as ListenFilter;
}

const LIST_CHANGED: Readonly<Record<string, keyof ListenFilter>> = {
  'notifications/tools/list_changed': 'toolsListChanged',
  'notifications/prompts/list_changed': 'promptsListChanged',
  'notifications/resources/list_changed': 'resourcesListChanged',
};

interface Listener {
  readonly id: string | number;
  readonly filter: ListenFilter;
  readonly stream: EventStream;
}

export interface ListenHooks {
  /** The first listen asking for `uri`: subscribe at the child. */
  subscribe(uri: string): void;
  /** The last listen for `uri` went away: unsubscribe at the child. */
  unsubscribe(uri: string): void;
}

export class Listens {
  private readonly listeners = new Set<Listener>();
  private readonly uriCounts = new Map<string, number>();

  constructor(private readonly hooks: ListenHooks) {}

  get size(): number {
    return this.listeners.size;
  }

  /** Opens a listen on `res` for request `id` with the honoured `filter`; it lasts until the client closes it. */
  open(res: ServerResponse, id: string | number, filter: ListenFilter, keepAliveMs: number): void {
    const stream = new EventStream(res, keepAliveMs);
    const listener: Listener = { id, filter, stream };
    this.listeners.add(listener);
    for (const uri of filter.resourceSubscriptions ?? []) this.retain(uri);
    stream.write(
      messageEvent({
        jsonrpc: '2.0',
        method: 'notifications/subscriptions/acknowledged',
        params: { notifications: filter, _meta: { [META.subscriptionId]: id } },
      }),
    );
    res.once('close', () => this.drop(listener));
  }

  /** Closes the listen opened by request `id` (the client cancelled it). */
  cancel(id: unknown): boolean {
    for (const listener of this.listeners) {
      if (listener.id !== id) continue;
      listener.stream.end();
      this.drop(listener);
      return true;
    }
    return false;
  }

  /** A notification from the child: to every listen whose filter asked for it. */
  deliver(message: { method: string; params?: Bag }): boolean {
    const kind = LIST_CHANGED[message.method];
    const uri = message.method === 'notifications/resources/updated' ? message.params?.uri : undefined;
    if (kind === undefined && uri === undefined) return false;
    for (const listener of this.listeners) {
      const wanted = kind !== undefined ? listener.filter[kind] === true : listener.filter.resourceSubscriptions?.includes(String(uri)) === true;
      if (!wanted) continue;
      const params = { ...(message.params ?? {}), _meta: { ...((message.params?._meta as Bag | undefined) ?? {}), [META.subscriptionId]: listener.id } };
      listener.stream.write(messageEvent({ jsonrpc: '2.0', method: message.method, params }));
    }
    return true;
  }

  /** The conversation ended: every listen ends with its final result (a graceful end). */
  closeAll(serverInfo: Bag | undefined): void {
    for (const listener of [...this.listeners]) {
      const _meta: Bag = { [META.subscriptionId]: listener.id, ...(serverInfo ? { [META.serverInfo]: serverInfo } : {}) };
      listener.stream.write(messageEvent({ jsonrpc: '2.0', id: listener.id, result: { resultType: 'complete', _meta } }));
      listener.stream.end();
      this.drop(listener);
    }
  }

  private drop(listener: Listener): void {
    if (!this.listeners.delete(listener)) return;
    for (const uri of listener.filter.resourceSubscriptions ?? []) this.release(uri);
  }

  private retain(uri: string): void {
    const n = this.uriCounts.get(uri) ?? 0;
    this.uriCounts.set(uri, n + 1);
    if (n === 0) this.hooks.subscribe(uri);
  }

  private release(uri: string): void {
    const n = (this.uriCounts.get(uri) ?? 1) - 1;
    if (n > 0) {
      this.uriCounts.set(uri, n);
      return;
    }
    this.uriCounts.delete(uri);
    this.hooks.unsubscribe(uri);
  }
}
