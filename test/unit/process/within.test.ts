import { describe, expect, it } from '@jest/globals';
import { within } from '../../../src/process/within.js';

describe('within', () => {
  it('is true when the promise resolves in time', async () => {
    await expect(within(Promise.resolve('x'), 1_000)).resolves.toBe(true);
  });

  it('is true when the promise rejects in time (settling is what counts), without an unhandled rejection', async () => {
    await expect(within(Promise.reject(new Error('gone')), 1_000)).resolves.toBe(true);
  });

  it('is false once the bound passes while the promise is still pending', async () => {
    await expect(within(new Promise(() => undefined), 10)).resolves.toBe(false);
  });
});
