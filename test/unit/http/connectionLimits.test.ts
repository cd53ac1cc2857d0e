import { describe, expect, it } from '@jest/globals';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { defaultMaxConnections, fileDescriptorLimit } from '../../../src/http/connectionLimits.js';

const dir = mkdtempSync(join(tmpdir(), 'warden-limits-'));
function limitsFile(openFiles: string): string {
  const file = join(dir, `limits-${Math.random().toString(36).slice(2)}`);
  writeFileSync(
    file,
    `Limit                     Soft Limit           Hard Limit           Units\nMax cpu time              unlimited            unlimited            seconds\nMax open files            ${openFiles}            files\n`,
  );
  return file;
}

describe('fileDescriptorLimit', () => {
  it('reads the soft open-files limit', () => {
    expect(fileDescriptorLimit(limitsFile('1024                 524288'))).toBe(1024);
  });
  it('is undefined when unlimited, unreadable or malformed', () => {
    expect(fileDescriptorLimit(limitsFile('unlimited unlimited'))).toBeUndefined();
    expect(fileDescriptorLimit(join(dir, 'missing'))).toBeUndefined();
    expect(fileDescriptorLimit(limitsFile('lots lots'))).toBeUndefined();
  });
  it('reads this process’s limit on Linux', () => {
    expect(fileDescriptorLimit()).toBeGreaterThan(0);
  });
});

describe('defaultMaxConnections', () => {
  it('leaves room for every child’s pipes and the gateway', () => {
    expect(defaultMaxConnections(1024, 64)).toBe(1024 - 64 - 4 * 64);
  });
  it('never goes below 32, and has a fixed default when the limit is unknown', () => {
    expect(defaultMaxConnections(100, 64)).toBe(32);
    expect(defaultMaxConnections(undefined, 64)).toBe(4096);
  });
});
