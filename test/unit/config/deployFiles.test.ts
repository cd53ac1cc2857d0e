/**
 * fly.toml, the Dockerfile and the Fly whitelist example agree with each other and with the
 * code: the drain ends before Fly's kill_timeout, the gateway's connection limit is Fly's
 * hard limit, every [env] value is a valid setting, the whitelist loads and keeps its
 * caches on the mounted volume, and uv is pinned by version and checksum.
 */
import { describe, expect, it } from '@jest/globals';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadCommandsFile } from '../../../src/config/commands.js';
import { parseSettings } from '../../../src/config/settings.js';

const root = process.cwd();
const flyToml = readFileSync(join(root, 'fly.toml'), 'utf8');
const dockerfile = readFileSync(join(root, 'Dockerfile'), 'utf8');

/** `key = "value"` lines of one [section] of fly.toml (a flat reading, enough for this file). */
function section(name: string): Record<string, string> {
  const lines = flyToml.split('\n');
  const start = lines.findIndex((l) => l.trim() === `[${name}]` || l.trim() === `[[${name}]]`);
  if (start === -1) throw new Error(`fly.toml has no [${name}]`);
  const out: Record<string, string> = {};
  for (const line of lines.slice(start + 1)) {
    if (/^\s*\[/.test(line)) break;
    const match = /^\s*([A-Za-z_]+)\s*=\s*"?([^"#]*?)"?\s*(#.*)?$/.exec(line);
    if (match) out[match[1]!] = match[2]!;
  }
  return out;
}

const top = Object.fromEntries([...flyToml.split('\n[')[0]!.matchAll(/^([a-z_]+)\s*=\s*"([^"]*)"/gm)].map((m) => [m[1], m[2]]));
const env = section('env');

describe('fly.toml', () => {
  it('gives the drain less time than Fly waits before SIGKILL', () => {
    expect(top.kill_signal).toBe('SIGTERM');
    const killMs = Number(/^(\d+)s$/.exec(top.kill_timeout ?? '')?.[1]) * 1000;
    expect(Number(env.WARDEN_SHUTDOWN_GRACE_MS)).toBeLessThan(killMs);
  });

  it('sets only valid settings, and the gateway stops accepting connections where Fly stops sending them', () => {
    const settings = parseSettings([], { ...env, WARDEN_SECRET: 'a-secret-for-the-test', FLY_APP_NAME: top.app, FLY_MACHINE_ID: '683d479c1d6e98' }).settings;
    expect(section('http_service.concurrency')).toMatchObject({ type: 'connections' });
    expect(settings.maxConnections).toBe(Number(section('http_service.concurrency').hard_limit));
    // ~1,000 sessions on a shared entry fit under the connection limits.
    expect(Number(section('http_service.concurrency').soft_limit)).toBeGreaterThanOrEqual(1000);
    // Memory decides how many children run: the budget follows the VM, no fixed count of children.
    expect(env.WARDEN_MAX_CHILDREN).toBeUndefined();
    expect(env.WARDEN_MEMORY_BUDGET_MB).toBeUndefined();
    expect(settings.memoryReserveMb).toBeGreaterThanOrEqual(128);
    expect(section('vm').memory).toBe('1gb');
    expect(settings.flyMachineId).toBe('683d479c1d6e98');
    expect(section('http_service.checks')).toMatchObject({ path: '/health', method: 'GET' });
  });

  it('mounts the volume where the image keeps its caches, and its whitelist keeps them there', async () => {
    const mount = section('mounts').destination;
    expect(mount).toBe('/data');
    for (const name of ['npm_config_cache', 'UV_CACHE_DIR', 'UV_PYTHON_INSTALL_DIR']) expect(dockerfile).toMatch(new RegExp(`${name}=${mount}/`));
    const whitelist = env.WARDEN_COMMANDS!.replace(/^\/app\//, '');
    const specs = await loadCommandsFile(join(root, whitelist));
    const npx = specs.find((s) => s.command === 'npx');
    const uvx = specs.find((s) => s.command === 'uvx');
    expect(npx?.env.npm_config_cache).toBe(`${mount}/npm-cache`);
    expect(uvx?.env.UV_CACHE_DIR).toBe(`${mount}/uv-cache`);
  });
});

describe('Dockerfile', () => {
  it('pins uv by version and checks the download against its sha256', () => {
    expect(dockerfile).toMatch(/^ENV UV_VERSION=\d+\.\d+\.\d+$/m);
    expect(dockerfile).toMatch(/amd64\) target=x86_64-unknown-linux-gnu; sha256=[0-9a-f]{64} ;;/);
    expect(dockerfile).toContain('sha256sum -c -');
  });
});
