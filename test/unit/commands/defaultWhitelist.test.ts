/**
 * The shipped whitelists: the default allowed-commands.json and every example whitelist
 * load, and none serves one server under two keys (a policy section for one key would
 * leave the other key open). The default serves the reference server offline.
 */
import { describe, expect, it } from '@jest/globals';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { loadCommandsFile } from '../../../src/config/commands.js';
import type { CommandSpec } from '../../../src/commands/types.js';

const ROOT = process.cwd();
const FILES = [
  'allowed-commands.json',
  ...readdirSync(join(ROOT, 'examples'))
    .filter((f) => /^allowed-commands.*\.json$/.test(f))
    .map((f) => `examples/${f}`),
];

/** The package an npx/uvx entry runs, without its version. */
function packageOf(word: string): string {
  return word.replace(/(?<=.)@[^/@]*$/, '');
}

/** What a spec runs, so two keys for one server compare equal. */
function serverOf(spec: CommandSpec): string {
  const runner = spec.command.split('/').pop();
  if (runner === 'npx' || runner === 'uvx' || runner === 'pnpx' || runner === 'bunx') {
    const pkg = spec.args.find((arg) => !arg.startsWith('-'));
    if (pkg) return `package ${packageOf(pkg)}`;
  }
  for (const arg of spec.args) {
    const match = /node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(arg);
    if (match) return `package ${match[1]}`;
  }
  return `argv ${JSON.stringify([spec.command, ...spec.args])} in ${spec.cwd}`;
}

describe('the shipped whitelists', () => {
  it('include the default and the npx example', () => {
    expect(FILES).toEqual(expect.arrayContaining(['allowed-commands.json', 'examples/allowed-commands.npx.json']));
  });

  it.each(FILES)('%s serves each server under one key', async (file) => {
    const specs = await loadCommandsFile(join(ROOT, file));
    expect(specs.length).toBeGreaterThan(0);
    const keysByServer = new Map<string, string[]>();
    for (const spec of specs) keysByServer.set(serverOf(spec), [...(keysByServer.get(serverOf(spec)) ?? []), spec.key]);
    const doubles = [...keysByServer].filter(([, keys]) => keys.length > 1);
    expect(doubles).toEqual([]);
  });

  it('the default serves the reference server as mcp-server-everything, from the installed package', async () => {
    const specs = await loadCommandsFile(join(ROOT, 'allowed-commands.json'));
    expect(specs.map((s) => s.key)).toEqual(['mcp-server-everything']);
    const [spec] = specs;
    expect(spec?.command).toBe('node');
    expect(existsSync(join(spec!.cwd, spec!.args[0]!))).toBe(true);
  });

  it('the npx example runs the same server through npx', async () => {
    const specs = await loadCommandsFile(join(ROOT, 'examples/allowed-commands.npx.json'));
    expect(specs.map(serverOf)).toContain('package @modelcontextprotocol/server-everything');
    expect(specs.find((s) => s.key === 'npx -y @modelcontextprotocol/server-everything')).toMatchObject({
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-everything'],
    });
  });
});
