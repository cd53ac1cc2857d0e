/**
 * Metrics of memory and capacity, on the gateway's registry: gauges read at scrape time
 * (the budget, what the gateway and each command's children use, each command's mean and
 * high-water mark per child tree, sleeping sessions) and counters fed by the capacity parts
 * (evictions, hibernations, resumes and their time, trees stopped for their memory). The
 * only labels are the whitelist's command keys and fixed sets, so series stay bounded.
 */
import client from 'prom-client';
import type { CommandRegistry } from '../commands/registry.js';
import type { Capacity } from '../capacity/capacity.js';
import type { EvictionReason } from '../capacity/evictor.js';
import type { MemorySampler } from '../capacity/sampler.js';
import { hibernatedSessions } from '../capacity/status.js';
import type { SessionStore } from '../transports/sessions.js';

const RESUME_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];

export interface CapacitySources {
  readonly registry: CommandRegistry;
  readonly sessions: SessionStore;
  readonly sampler: MemorySampler;
  readonly capacity: Capacity;
}

export class CapacityMetrics {
  readonly #evictions: client.Counter<'reason' | 'action'>;
  readonly #hibernations: client.Counter<'command'>;
  readonly #resumeSeconds: client.Histogram<'command' | 'pooled'>;
  readonly #memoryStops: client.Counter<'command'>;

  constructor(private readonly register: client.Registry) {
    this.#evictions = new client.Counter({
      name: 'warden_evictions_total',
      help: 'Idle sessions that gave way: reason memory_budget (a new child needed room) or client_cap (the client was at --max-sessions-per-client); action closed or hibernated',
      labelNames: ['reason', 'action'] as const,
      registers: [register],
    });
    this.#hibernations = new client.Counter({
      name: 'warden_hibernations_total',
      help: 'Sessions whose child was stopped while they stay open',
      labelNames: ['command'] as const,
      registers: [register],
    });
    this.#resumeSeconds = new client.Histogram({
      name: 'warden_resume_seconds',
      help: 'From the first message to a hibernated session until a child took it (start or warm spare, and the replayed handshake)',
      labelNames: ['command', 'pooled'] as const,
      buckets: RESUME_BUCKETS,
      registers: [register],
    });
    this.#memoryStops = new client.Counter({
      name: 'warden_memory_exceeded_total',
      help: 'Child trees stopped for using more memory than their limit',
      labelNames: ['command'] as const,
      registers: [register],
    });
  }

  evicted(reason: EvictionReason, hibernated: boolean): void {
    this.#evictions.inc({ reason, action: hibernated ? 'hibernated' : 'closed' });
  }

  hibernated(command: string): void {
    this.#hibernations.inc({ command });
  }

  resumed(command: string, seconds: number, pooled: boolean): void {
    this.#resumeSeconds.observe({ command, pooled: String(pooled) }, seconds);
  }

  memoryExceeded(command: string): void {
    this.#memoryStops.inc({ command });
  }

  /** Adds the gauges read at scrape time. */
  observe({ registry, sessions, sampler, capacity }: CapacitySources): void {
    const register = this.register;
    new client.Gauge({
      name: 'warden_memory_budget_bytes',
      help: 'Memory the gateway plans with (--memory-budget-mb, the cgroup limit or total memory); --memory-reserve-mb of it is never planned for children',
      registers: [register],
      collect() {
        this.set(capacity.budget.bytes);
      },
    });
    new client.Gauge({
      name: 'warden_memory_used_bytes',
      help: 'Memory counted against the budget: the gateway, every child tree, and starts under way at their expected cost',
      registers: [register],
      collect() {
        this.set(capacity.usedBytes());
      },
    });
    new client.Gauge({
      name: 'warden_gateway_memory_bytes',
      help: 'Resident memory of the gateway process at the last sample',
      registers: [register],
      collect() {
        this.set(sampler.gatewayBytes);
      },
    });
    const perCommand = (name: string, help: string, read: (key: string) => number) =>
      new client.Gauge({
        name,
        help,
        labelNames: ['command'] as const,
        registers: [register],
        collect() {
          this.reset();
          for (const key of registry.keys()) this.set({ command: key }, read(key));
        },
      });
    perCommand('warden_child_memory_bytes', "Resident memory of the command's child trees now (the last sample)", (key) => sampler.command(key).liveBytes);
    perCommand(
      'warden_child_memory_mean_bytes',
      'Mean resident memory of one child tree of the command, over every sample',
      (key) => sampler.command(key).meanBytes,
    );
    perCommand(
      'warden_child_memory_high_water_bytes',
      'The most resident memory one child tree of the command used (what a new child is planned at)',
      (key) => sampler.command(key).highWaterBytes,
    );
    perCommand('warden_hibernated_sessions', 'Open sessions of the command whose child is stopped until their next message', (key) =>
      hibernatedSessions(sessions, key),
    );
  }
}
