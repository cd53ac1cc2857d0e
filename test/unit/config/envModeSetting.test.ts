import { describe, expect, it } from '@jest/globals';
import { parseSettings, SettingsError, USAGE } from '../../../src/config/settings.js';

describe('--env-mode / WARDEN_ENV_MODE', () => {
  it('defaults to blocklist', () => {
    expect(parseSettings([], {}).settings.envMode).toBe('blocklist');
  });

  it('takes the flag, or the environment variable, the flag winning', () => {
    expect(parseSettings(['--env-mode', 'allowlist'], {}).settings.envMode).toBe('allowlist');
    expect(parseSettings([], { WARDEN_ENV_MODE: 'allowlist' }).settings.envMode).toBe('allowlist');
    expect(parseSettings(['--env-mode', 'blocklist'], { WARDEN_ENV_MODE: 'allowlist' }).settings.envMode).toBe('blocklist');
  });

  it.each<[string[], Record<string, string>, string]>([
    [['--env-mode', 'open'], {}, 'invalid --env-mode: must be blocklist or allowlist'],
    [[], { WARDEN_ENV_MODE: 'Allowlist' }, 'invalid WARDEN_ENV_MODE: must be blocklist or allowlist'],
  ])('refuses %j %j naming the flag or variable', (argv, env, message) => {
    expect(() => parseSettings(argv, env)).toThrow(SettingsError);
    expect(() => parseSettings(argv, env)).toThrow(message);
  });

  it('is in the usage text', () => {
    expect(USAGE).toMatch(/--env-mode M .*\n? *\(WARDEN_ENV_MODE, default blocklist\)/);
  });
});
