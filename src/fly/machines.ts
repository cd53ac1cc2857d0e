/**
 * Which machines serve the app right now, for routing on Fly.io. The source is pluggable:
 * in production, Fly's internal DNS (`vms.<app>.internal`, a TXT record listing the started
 * machines as `<id> <region>,<id> <region>`) polled every few seconds, keeping the last good
 * list when a lookup fails; tests give their own. The machine itself is always in the list.
 */
import { promises as dns } from 'node:dns';
import type { Logger } from '../logging/logger.js';
import { MACHINE_ID } from './sessionIds.js';

export interface MachineSource {
  /** The live machines, self included; undefined while no list has been learnt yet. */
  current(): readonly string[] | undefined;
  /** Starts watching (idempotent). */
  start?(): void;
  /** Stops watching (idempotent). */
  close?(): void;
}

/** The machine ids of a `vms.<app>.internal` TXT answer (chunks of one record joined; ids only). */
export function parseVmsTxt(records: readonly (readonly string[])[]): string[] {
  const ids = new Set<string>();
  for (const record of records) {
    for (const entry of record.join('').split(',')) {
      const id = entry.trim().split(/\s+/)[0] ?? '';
      if (MACHINE_ID.test(id)) ids.add(id);
    }
  }
  return [...ids].sort();
}

export interface DnsMachinesOptions {
  readonly app: string;
  readonly self: string;
  readonly logger: Logger;
  /** How often the list is looked up, ms. @default 5000 */
  readonly pollMs?: number;
  /** The TXT lookup (node:dns by default). */
  readonly resolveTxt?: (name: string) => Promise<string[][]>;
}

export class DnsMachines implements MachineSource {
  private list: readonly string[] | undefined;
  private timer: NodeJS.Timeout | undefined;
  private failing = false;
  private closed = false;
  private readonly name: string;

  constructor(private readonly options: DnsMachinesOptions) {
    this.name = `vms.${options.app}.internal`;
  }

  current(): readonly string[] | undefined {
    return this.list;
  }

  start(): void {
    if (this.timer || this.closed) return;
    void this.refresh();
    this.timer = setInterval(() => void this.refresh(), this.options.pollMs ?? 5_000);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearInterval(this.timer);
  }

  /** Looks the list up once (the poll does this every `pollMs`). */
  async refresh(): Promise<void> {
    const resolveTxt = this.options.resolveTxt ?? ((name: string) => dns.resolveTxt(name));
    try {
      const ids = parseVmsTxt(await resolveTxt(this.name));
      if (this.closed) return;
      this.list = ids.includes(this.options.self) ? ids : [...ids, this.options.self].sort();
      if (this.failing) this.options.logger.info('machine list reachable again', { name: this.name, machines: this.list.length });
      this.failing = false;
    } catch (error) {
      if (this.failing || this.closed) return;
      this.failing = true;
      // The last good list stays in force; before any, sessions are trusted to their ids.
      this.options.logger.warn('machine list lookup failed; keeping the last good list', { name: this.name, error: (error as Error).message });
    }
  }
}
