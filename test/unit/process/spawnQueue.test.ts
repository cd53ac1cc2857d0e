/**
 * SpawnQueue: the concurrency bound and priority order of p-queue, plus a close() that
 * settles waiting tasks (p-queue's clear() leaves their promises pending forever).
 */
import { describe, expect, it } from '@jest/globals';
import { DrainingError } from '../../../src/errors.js';
import { SpawnQueue } from '../../../src/process/spawnQueue.js';

/** A task that runs until `finish` is called, recording that it started. */
function gate(name: string, started: string[]) {
  let finish!: (value: string) => void;
  const done = new Promise<string>((resolve) => (finish = resolve));
  return {
    task: () => {
      started.push(name);
      return done;
    },
    finish: () => finish(name),
  };
}

describe('SpawnQueue', () => {
  it('runs at most `concurrency` tasks; the next free slot goes to the highest priority', async () => {
    const started: string[] = [];
    const queue = new SpawnQueue(1);
    const a = gate('a', started);
    const spare = gate('spare', started);
    const session = gate('session', started);
    const results = [queue.add(a.task, 0), queue.add(spare.task, 0), queue.add(session.task, 1)];
    await Promise.resolve();
    expect(started).toEqual(['a']);
    a.finish();
    await expect(results[0]).resolves.toBe('a');
    session.finish();
    await expect(results[2]).resolves.toBe('session');
    spare.finish();
    await expect(results[1]).resolves.toBe('spare');
    expect(started).toEqual(['a', 'session', 'spare']);
  });

  it('passes a failed task on to its caller', async () => {
    const queue = new SpawnQueue(1);
    await expect(queue.add(() => Promise.reject(new Error('spawn failed')), 0)).rejects.toThrow('spawn failed');
  });

  it('close(): waiting tasks end with DrainingError and never run; a running one finishes; later adds are refused', async () => {
    const started: string[] = [];
    const queue = new SpawnQueue(1);
    const running = gate('running', started);
    const first = queue.add(running.task, 0);
    const waiting = [queue.add(gate('w1', started).task, 1), queue.add(gate('w2', started).task, 0)];
    await Promise.resolve();

    queue.close();
    queue.close();
    for (const w of waiting) await expect(w).rejects.toBeInstanceOf(DrainingError);
    running.finish();
    await expect(first).resolves.toBe('running');
    await expect(queue.add(gate('late', started).task, 1)).rejects.toBeInstanceOf(DrainingError);
    expect(started).toEqual(['running']);
  });
});
