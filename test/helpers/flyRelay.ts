/**
 * A stand-in for Fly's proxy in front of gateway instances ("machines") on loopback. Each
 * request goes to the machine the test picks (alternating by default). An answer carrying
 * `fly-replay` is not passed on: the same request (its body buffered here) is sent again to
 * the machine named (`instance=<id>`) or to another one (`elsewhere=true`), with
 * `fly-replay-src` naming the machine it came from, as Fly's proxy does. Like the proxy, it
 * fails (502) a replay of a body over 1 MB or to a machine it does not know, unless
 * `fallback=force_self` sends the request back to the first machine with `fly-replay-failed`.
 * Every request and each hop it took is logged for assertions.
 */
import http, { type IncomingHttpHeaders, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** What Fly's proxy replays at most, bytes. */
export const FLY_REPLAY_LIMIT = 1_000_000;

export interface RelayHop {
  readonly machine: string;
  readonly status: number;
  /** The `fly-replay` header of this machine's answer, if any. */
  readonly replay?: string;
}

export interface RelayEntry {
  readonly method: string;
  readonly path: string;
  /** The request body's first 4 KiB. */
  readonly body: string;
  readonly hops: RelayHop[];
  /** Set when the relay itself answered (a replay it could not do). */
  failed?: string;
}

/** A machine list a test can change (the gateways' `deps.machines`). */
export function liveMachines(ids: readonly string[]): { current(): readonly string[]; set(ids: readonly string[]): void } {
  let list = [...ids];
  return { current: () => list, set: (next) => void (list = [...next]) };
}

const HOP_BY_HOP = ['connection', 'keep-alive', 'transfer-encoding', 'proxy-connection', 'upgrade'];

function withoutHopByHop(headers: IncomingHttpHeaders): IncomingHttpHeaders {
  const copy = { ...headers };
  for (const name of HOP_BY_HOP) delete copy[name];
  return copy;
}

function parseReplay(value: string): Record<string, string> {
  const fields: Record<string, string> = {};
  for (const part of value.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0) fields[part.slice(0, eq).trim()] = part.slice(eq + 1).trim();
  }
  return fields;
}

export class FlyRelay {
  readonly log: RelayEntry[] = [];
  /** Picks the machine a new request goes to; `n` counts requests from 0. Alternates by default. */
  pick: (req: IncomingMessage, n: number) => string;
  private count = 0;
  private readonly agent = new http.Agent({ keepAlive: true });

  private constructor(
    private readonly server: http.Server,
    private readonly machines: Map<string, number>,
  ) {
    const ids = [...machines.keys()];
    this.pick = (_req, n) => ids[n % ids.length]!;
    server.on('request', (req, res) => void this.handle(req, res));
  }

  /** Starts a relay on a random loopback port in front of `machines` (id -> port). */
  static async start(machines: Record<string, number>): Promise<FlyRelay> {
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    return new FlyRelay(server, new Map(Object.entries(machines)));
  }

  get base(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  url(key: string, endpoint: 'sse' | 'mcp' | 'messages'): URL {
    return new URL(`${this.base}/${encodeURIComponent(key)}/${endpoint}`);
  }

  /** Sends every new request to `machine` (undefined: alternate again). */
  only(machine: string | undefined): void {
    const ids = [...this.machines.keys()];
    this.pick = machine === undefined ? (_req, n) => ids[n % ids.length]! : () => machine;
  }

  /** Entries whose request was replayed at least once. */
  replayed(): RelayEntry[] {
    return this.log.filter((e) => e.hops.length > 1);
  }

  /** Hops that answered with `fly-replay` although the request had already been replayed. */
  replayedTwice(): RelayEntry[] {
    return this.log.filter((e) => e.hops.slice(1).some((h) => h.replay !== undefined));
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
    this.agent.destroy();
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const chunks: Buffer[] = [];
    for await (const chunk of req) chunks.push(chunk as Buffer);
    const body = Buffer.concat(chunks);
    const entry: RelayEntry = { method: req.method ?? 'GET', path: req.url ?? '/', body: body.subarray(0, 4096).toString('utf8'), hops: [] };
    this.log.push(entry);
    this.forward(req, res, body, this.pick(req, this.count++), {}, entry);
  }

  private forward(req: IncomingMessage, res: ServerResponse, body: Buffer, machine: string, extra: Record<string, string>, entry: RelayEntry): void {
    const port = this.machines.get(machine);
    if (port === undefined) return this.fail(res, entry, `no machine ${machine}`);
    const headers: IncomingHttpHeaders = { ...withoutHopByHop(req.headers), ...extra };
    if (req.headers['transfer-encoding'] !== undefined) headers['transfer-encoding'] = req.headers['transfer-encoding'];
    const upstream = http.request({ host: '127.0.0.1', port, method: req.method, path: req.url, headers, agent: this.agent });
    upstream.on('response', (answer) => {
      const replay = typeof answer.headers['fly-replay'] === 'string' ? answer.headers['fly-replay'] : undefined;
      const first = entry.hops.length === 0;
      entry.hops.push({ machine, status: answer.statusCode ?? 0, ...(replay === undefined ? {} : { replay }) });
      if (replay !== undefined && first) {
        answer.resume();
        return this.replay(req, res, body, machine, parseReplay(replay), entry);
      }
      res.writeHead(answer.statusCode ?? 502, withoutHopByHop(answer.headers));
      res.flushHeaders();
      answer.pipe(res);
    });
    upstream.on('error', () => (res.headersSent ? res.destroy() : this.fail(res, entry, `machine ${machine} did not answer`)));
    res.once('close', () => {
      if (!res.writableFinished) upstream.destroy();
    });
    upstream.end(body);
  }

  private replay(req: IncomingMessage, res: ServerResponse, body: Buffer, from: string, fields: Record<string, string>, entry: RelayEntry): void {
    if (body.length > FLY_REPLAY_LIMIT) return this.fail(res, entry, 'request too large to replay');
    const target = fields.instance ?? (fields.elsewhere === 'true' ? [...this.machines.keys()].find((id) => id !== from) : undefined);
    if (target === undefined || !this.machines.has(target)) {
      if (fields.fallback === 'force_self')
        return this.forward(req, res, body, from, { 'fly-replay-failed': `instance=${target ?? ''};replay_source=${from};reason=no_candidate` }, entry);
      return this.fail(res, entry, `no machine ${target ?? '(elsewhere)'}`);
    }
    const t = String(Date.now() * 1000);
    this.forward(req, res, body, target, { 'fly-replay-src': `instance=${from};region=tst;t=${t}` }, entry);
  }

  /** What Fly's proxy answers when it cannot deliver: its own error page. */
  private fail(res: ServerResponse, entry: RelayEntry, why: string): void {
    entry.failed = why;
    if (res.headersSent) return void res.destroy();
    res.writeHead(502, { 'Content-Type': 'text/html' }).end(`<html><body>fly proxy error: ${why}</body></html>`);
  }
}
