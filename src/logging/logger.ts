/**
 * The gateway's logger: winston, JSON lines, every level to stderr. stdout is never used.
 * Modules receive a Logger; none creates its own.
 */
import winston from 'winston';

export type Logger = winston.Logger;

export const LOG_LEVELS = ['error', 'warn', 'info', 'http', 'verbose', 'debug', 'silly'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export function createLogger(level: LogLevel = 'info'): Logger {
  return winston.createLogger({
    level,
    format: winston.format.combine(winston.format.timestamp(), winston.format.json()),
    transports: [new winston.transports.Console({ stderrLevels: [...LOG_LEVELS] })],
  });
}

/**
 * Lets through at most `max` calls per `windowMs`, then one summary of how many were
 * suppressed. Used for child output that a misbehaving server could repeat endlessly.
 */
export class LogThrottle {
  private windowStart = 0;
  private count = 0;
  private suppressed = 0;

  constructor(
    private readonly max = 10,
    private readonly windowMs = 10_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** Returns true when the caller should log; `onSuppressed` gets the count of a closed window. */
  allow(onSuppressed?: (count: number) => void): boolean {
    const t = this.now();
    if (t - this.windowStart >= this.windowMs) {
      if (this.suppressed > 0) onSuppressed?.(this.suppressed);
      this.windowStart = t;
      this.count = 0;
      this.suppressed = 0;
    }
    if (this.count < this.max) {
      this.count += 1;
      return true;
    }
    this.suppressed += 1;
    return false;
  }
}
