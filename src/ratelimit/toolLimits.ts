/**
 * Tool-call rate limits from the policy. Each distinct rule gets one limiter (created on
 * first use and cached), and each budget is keyed by whose it is and which tool:
 * `${scope}:${tool}`. The tool name is percent-encoded so a `:` in it cannot make two
 * (scope, tool) pairs share a key.
 */
import { validateRateRule, type LimiterStore, type RateDecision, type RateRule, type Limiter } from './limiter.js';

/** The limiter name for a rule, e.g. `tool_5per60s`. */
export function toolLimiterName(rule: RateRule): string {
  return `tool_${rule.points}per${rule.durationSeconds}s`;
}

export class ToolRateLimits {
  private readonly limiters = new Map<string, Limiter>();

  constructor(private readonly store: LimiterStore) {}

  /** Takes one call from `scope`'s budget for `tool` (scope: e.g. `role:admin` or a client key). */
  async consume(scope: string, tool: string, rule: RateRule): Promise<RateDecision> {
    if (typeof scope !== 'string' || scope.length === 0) throw new TypeError('scope must be a non-empty string');
    if (typeof tool !== 'string' || tool.length === 0) throw new TypeError('tool must be a non-empty string');
    const valid = validateRateRule(rule);
    const name = toolLimiterName(valid);
    let limiter = this.limiters.get(name);
    if (!limiter) {
      limiter = this.store.create(name, valid);
      this.limiters.set(name, limiter);
    }
    return limiter.consume(`${scope}:${encodeURIComponent(tool)}`);
  }
}
