/**
 * Prometheus metrics (prom-client) on a registry of the gateway's own. Gauges for
 * sessions and children are read at scrape time; counters and histograms are fed by the
 * parts that see the events. Nothing here is on the per-message path except counters.
 *
 * Labels whose values a client or a child can choose (the JSON-RPC method) are mapped onto
 * a known set by the wrappers below (./labels.ts), so the number of series stays bounded
 * whatever is sent; the raw prom-client metrics are not handed out.
 */
import client from 'prom-client';
import { knownLimit, knownMethod, knownOutcome } from './labels.js';
import type { CommandRegistry } from '../commands/registry.js';
import type { ProcessManager } from '../process/manager.js';
import type { SessionStore } from '../transports/sessions.js';

export interface MetricsSources {
  readonly registry: CommandRegistry;
  readonly sessions: SessionStore;
  readonly processes: ProcessManager;
}

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

export class Metrics {
  readonly register = new client.Registry();
  readonly spawns = new client.Counter({
    name: 'warden_spawns_total',
    help: 'Child processes started',
    labelNames: ['command'] as const,
    registers: [this.register],
  });
  readonly exits = new client.Counter({
    name: 'warden_child_exits_total',
    help: 'Child processes that ended, by reason (stopped, crashed, failed_start)',
    labelNames: ['command', 'reason'] as const,
    registers: [this.register],
  });
  readonly spawnSeconds = new client.Histogram({
    name: 'warden_spawn_seconds',
    help: 'Time to start a child (spawn and startup window)',
    labelNames: ['command'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.register],
  });
  readonly connectSeconds = new client.Histogram({
    name: 'warden_connect_seconds',
    help: 'Time from a session request to its session being open',
    labelNames: ['transport', 'pooled'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.register],
  });
  readonly #requestSeconds = new client.Histogram({
    name: 'warden_request_seconds',
    help: 'Time from a client request to the server reply, by JSON-RPC method (methods outside the MCP specifications count as "other")',
    labelNames: ['method'] as const,
    buckets: LATENCY_BUCKETS,
    registers: [this.register],
  });
  readonly #policyDecisions = new client.Counter({
    name: 'warden_policy_decisions_total',
    help: 'Tool policy decisions by outcome (allowed, denied, rate-limited, shadow-denied, shadow-rate-limited)',
    labelNames: ['outcome'] as const,
    registers: [this.register],
  });
  readonly #rateLimited = new client.Counter({
    name: 'warden_rate_limited_total',
    help: 'Requests refused by a rate or session limit, by limit',
    labelNames: ['limit'] as const,
    registers: [this.register],
  });
  /** Request latency; `method` is labelled only when the MCP specifications define it. */
  readonly requestSeconds = {
    observe: (labels: { readonly method: string }, seconds: number): void => this.#requestSeconds.observe({ method: knownMethod(labels.method) }, seconds),
  };
  /** Policy decisions; an outcome outside the guard's set counts as `other`. */
  readonly policyDecisions = {
    inc: (labels: { readonly outcome: string }): void => this.#policyDecisions.inc({ outcome: knownOutcome(labels.outcome) }),
  };
  /** Refusals by limit; a limit name outside the known set counts as `other`. */
  readonly rateLimited = {
    inc: (labels: { readonly limit: string }): void => this.#rateLimited.inc({ limit: knownLimit(labels.limit) }),
  };
  /**
   * Bytes crossing the bridge, counted on every write and read: plain sums (no label
   * hashing on the message path), handed to the counter below at scrape time.
   */
  readonly bytes = { in: new ByteSum(), out: new ByteSum() };

  constructor() {
    client.collectDefaultMetrics({ register: this.register, prefix: 'warden_process_' });
    const bytes = this.bytes;
    new client.Counter({
      name: 'warden_bytes_total',
      help: 'Bytes crossing the bridge: in = client to server (child stdin), out = server to client (child stdout)',
      labelNames: ['direction'] as const,
      registers: [this.register],
      collect() {
        this.reset();
        this.inc({ direction: 'in' }, bytes.in.total);
        this.inc({ direction: 'out' }, bytes.out.total);
      },
    });
  }

  /** Adds the gauges read at scrape time. */
  observe(sources: MetricsSources): void {
    const { registry, sessions, processes } = sources;
    new client.Gauge({
      name: 'warden_sessions',
      help: 'Open sessions by transport and command',
      labelNames: ['transport', 'command'] as const,
      registers: [this.register],
      collect() {
        this.reset();
        for (const s of sessions.all()) this.inc({ transport: s.kind, command: s.commandKey });
      },
    });
    new client.Gauge({
      name: 'warden_children',
      help: 'Child processes by command and state (live: serving a session, warm: spare)',
      labelNames: ['command', 'state'] as const,
      registers: [this.register],
      collect() {
        this.reset();
        for (const key of registry.keys()) {
          const status = processes.status(registry.get(key)!);
          this.set({ command: key, state: 'live' }, status.live);
          this.set({ command: key, state: 'warm' }, status.warm);
        }
      },
    });
  }

  async text(): Promise<{ contentType: string; body: string }> {
    return { contentType: this.register.contentType, body: await this.register.metrics() };
  }
}

/** A running byte total. */
class ByteSum {
  total = 0;

  inc(n: number): void {
    this.total += n;
  }
}
