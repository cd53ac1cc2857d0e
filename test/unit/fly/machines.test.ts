/**
 * The live machine list from Fly's DNS (`vms.<app>.internal` TXT): parsing the record,
 * polling, keeping the last good list through failures, and always counting the machine
 * itself. The lookup is injected; no real DNS is asked.
 */
import { afterEach, describe, expect, it } from '@jest/globals';
import { DnsMachines, parseVmsTxt } from '../../../src/fly/machines.js';
import type { Logger } from '../../../src/logging/logger.js';
import { waitFor } from '../../helpers/procs.js';

describe('parseVmsTxt', () => {
  it('reads "<id> <region>" entries separated by commas', () => {
    expect(parseVmsTxt([['683d479c1d6e98 iad,e2865641be4e18 ord']])).toEqual(['683d479c1d6e98', 'e2865641be4e18']);
  });

  it('joins the chunks of a long record, tolerates spaces, drops what is not an id', () => {
    expect(parseVmsTxt([['683d479c1d6e98 iad, e2865', '641be4e18 ord ,,', ' bad.id lhr, 3d8d9e5b0c7418']])).toEqual([
      '3d8d9e5b0c7418',
      '683d479c1d6e98',
      'e2865641be4e18',
    ]);
    expect(parseVmsTxt([])).toEqual([]);
  });
});

describe('DnsMachines', () => {
  const sources: DnsMachines[] = [];
  afterEach(() => sources.splice(0).forEach((s) => s.close()));

  function logger() {
    const lines: string[] = [];
    const log = {
      warn: (message: string) => void lines.push(`warn ${message}`),
      info: (message: string) => void lines.push(`info ${message}`),
    } as unknown as Logger;
    return { lines, log };
  }

  it('asks vms.<app>.internal, always counts itself, keeps the last good list through failures', async () => {
    const answers: (string[][] | Error)[] = [
      [['e2865641be4e18 ord']],
      new Error('queryTxt ETIMEOUT'),
      new Error('queryTxt ETIMEOUT'),
      [['e2865641be4e18 ord,683d479c1d6e98 iad,3d8d9e5b0c7418 iad']],
    ];
    const asked: string[] = [];
    const { lines, log } = logger();
    const source = new DnsMachines({
      app: 'my-warden',
      self: '683d479c1d6e98',
      logger: log,
      resolveTxt: async (name) => {
        asked.push(name);
        const answer = answers.shift()!;
        if (answer instanceof Error) throw answer;
        return answer;
      },
    });
    sources.push(source);
    expect(source.current()).toBeUndefined();
    await source.refresh();
    expect(source.current()).toEqual(['683d479c1d6e98', 'e2865641be4e18']);
    await source.refresh();
    await source.refresh();
    expect(source.current()).toEqual(['683d479c1d6e98', 'e2865641be4e18']);
    await source.refresh();
    expect(source.current()).toEqual(['3d8d9e5b0c7418', '683d479c1d6e98', 'e2865641be4e18']);
    expect(asked).toEqual(Array(4).fill('vms.my-warden.internal'));
    // One warning per outage, one line when it is over.
    expect(lines).toEqual(['warn machine list lookup failed; keeping the last good list', 'info machine list reachable again']);
  });

  it('polls every pollMs once started', async () => {
    let asked = 0;
    const source = new DnsMachines({ app: 'a', self: 'm1', logger: logger().log, pollMs: 5, resolveTxt: async () => [[`m1 iad,m${(asked += 1) + 1} ord`]] });
    sources.push(source);
    source.start();
    await waitFor(() => asked >= 3, { message: 'three lookups' });
    expect(source.current()).toContain('m1');
  });

  it('learns nothing more once closed', async () => {
    let asked = 0;
    const source = new DnsMachines({ app: 'a', self: 'm1', logger: logger().log, resolveTxt: async () => [[`m1 iad,m${(asked += 1) + 1} ord`]] });
    await source.refresh();
    expect(source.current()).toEqual(['m1', 'm2']);
    source.close();
    source.start(); // closed for good: no timer is started
    await source.refresh();
    expect(source.current()).toEqual(['m1', 'm2']);
  });
});
