/**
 * Metric labels whose values a client or a child chooses stay within a known set: a flood
 * of distinct JSON-RPC methods, outcomes or limit names adds at most one series (`other`).
 * The set of methods is checked against the request schemas of both SDKs (2025-11-25 and
 * 2026-07-28), so a method the specifications define is never lumped into `other`.
 */
import { describe, expect, it } from '@jest/globals';
import * as core from '@modelcontextprotocol/core';
import * as sdk from '@modelcontextprotocol/sdk/types.js';
import { Metrics } from '../../../src/metrics/metrics.js';
import { KNOWN_LIMITS, KNOWN_METHODS, KNOWN_OUTCOMES, OTHER, knownMethod } from '../../../src/metrics/labels.js';

interface MetricValue {
  readonly labels: Record<string, string | number>;
  readonly value: number;
  readonly metricName?: string;
}

/** The values of one metric in the registry; for a histogram, its `_count` series. */
async function series(metrics: Metrics, name: string): Promise<MetricValue[]> {
  const metric = metrics.register.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = (await metric.get()) as { values: MetricValue[] };
  return values.filter((v) => v.metricName === undefined || v.metricName === `${name}_count`);
}

/** Request method literals of a zod union of request schemas. */
function methodsOf(schema: unknown): string[] {
  const options = (schema as { options: Array<{ shape: { method: { value: string } } }> }).options;
  return options.map((option) => option.shape.method.value);
}

describe('metric label cardinality', () => {
  it('10,000 distinct method names make at most one series per known method plus "other"', async () => {
    const metrics = new Metrics();
    for (let i = 0; i < 10_000; i += 1) metrics.requestSeconds.observe({ method: `junk/${i}-${'x'.repeat(i % 50)}` }, 0.001);
    for (const method of KNOWN_METHODS) metrics.requestSeconds.observe({ method }, 0.001);
    const values = await series(metrics, 'warden_request_seconds');
    expect(values.length).toBeLessThanOrEqual(KNOWN_METHODS.size + 1);
    const byMethod = new Map(values.map((v) => [v.labels.method, v.value]));
    expect(byMethod.get(OTHER)).toBe(10_000);
    for (const method of KNOWN_METHODS) expect(byMethod.get(method)).toBe(1);
    const text = (await metrics.text()).body;
    expect(text).not.toContain('junk/');
  });

  it('policy outcomes and limit names outside their sets count as "other"', async () => {
    const metrics = new Metrics();
    for (let i = 0; i < 1000; i += 1) {
      metrics.policyDecisions.inc({ outcome: `outcome-${i}` });
      metrics.rateLimited.inc({ limit: `limit-${i}` });
    }
    for (const outcome of KNOWN_OUTCOMES) metrics.policyDecisions.inc({ outcome });
    for (const limit of KNOWN_LIMITS) metrics.rateLimited.inc({ limit });
    const outcomes = await series(metrics, 'warden_policy_decisions_total');
    const limits = await series(metrics, 'warden_rate_limited_total');
    expect(outcomes).toHaveLength(KNOWN_OUTCOMES.size + 1);
    expect(limits).toHaveLength(KNOWN_LIMITS.size + 1);
    expect(outcomes.find((v) => v.labels.outcome === OTHER)?.value).toBe(1000);
    expect(limits.find((v) => v.labels.limit === OTHER)?.value).toBe(1000);
    expect(limits.find((v) => v.labels.limit === 'maxSessionsPerClient')?.value).toBe(1);
  });

  it('knows exactly the request methods of both SDKs, in both directions', () => {
    const specified = new Set([
      ...methodsOf(sdk.ClientRequestSchema),
      ...methodsOf(sdk.ServerRequestSchema),
      ...methodsOf(core.ClientRequestSchema),
      ...methodsOf(core.ServerRequestSchema),
    ]);
    expect([...KNOWN_METHODS].sort()).toEqual([...specified].sort());
  });

  it('maps anything that is not a known method string to "other"', () => {
    expect(knownMethod('tools/call')).toBe('tools/call');
    for (const value of ['Tools/Call', 'tools/call ', 'notifications/initialized', '__proto__', 'constructor', '', undefined, 42, null]) {
      expect(knownMethod(value)).toBe(OTHER);
    }
  });
});
