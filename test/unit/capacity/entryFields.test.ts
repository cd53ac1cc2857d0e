/**
 * The whitelist fields of capacity: `maxMemoryMb`, `idle` and `hibernateAfterMs` load onto
 * the CommandSpec; a bad value or a `hibernateAfterMs` without `"idle": "hibernate"` stops
 * the load with a message naming the entry and the field.
 */
import { describe, expect, it } from '@jest/globals';
import { CommandsFileError, parseCommands } from '../../../src/config/commands.js';

function parseError(entry: Record<string, unknown>): string {
  try {
    parseCommands({ srv: { command: 'srv', ...entry } }, '/base', 'allowed-commands.json');
  } catch (error) {
    expect(error).toBeInstanceOf(CommandsFileError);
    return (error as Error).message;
  }
  throw new Error('expected the entry to be refused');
}

describe('capacity fields of a whitelist entry', () => {
  it('load onto the spec', () => {
    const [spec] = parseCommands({ srv: { command: 'srv', maxMemoryMb: 256, idle: 'hibernate', hibernateAfterMs: 30_000 } }, '/base');
    expect(spec).toMatchObject({ maxMemoryMb: 256, idle: 'hibernate', hibernateAfterMs: 30_000 });
    const [plain] = parseCommands({ srv: { command: 'srv' } }, '/base');
    expect([plain?.maxMemoryMb, plain?.idle, plain?.hibernateAfterMs]).toEqual([undefined, undefined, undefined]);
  });

  it('refuse bad values, naming the entry and the field', () => {
    expect(parseError({ idle: 'sleep' })).toBe('allowed-commands.json: entry "srv": idle must be "keep" or "hibernate"');
    expect(parseError({ maxMemoryMb: 8 })).toMatch(/^allowed-commands.json: entry "srv": maxMemoryMb /);
    expect(parseError({ maxMemoryMb: '256' })).toContain('maxMemoryMb must be a number');
    expect(parseError({ idle: 'hibernate', hibernateAfterMs: 10 })).toContain('hibernateAfterMs');
  });

  it('refuse hibernateAfterMs without "idle": "hibernate"', () => {
    expect(parseError({ hibernateAfterMs: 60_000 })).toBe('allowed-commands.json: entry "srv": hibernateAfterMs needs "idle": "hibernate"');
    expect(parseError({ idle: 'keep', hibernateAfterMs: 60_000 })).toContain('hibernateAfterMs needs "idle": "hibernate"');
  });
});
