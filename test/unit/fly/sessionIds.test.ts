/**
 * Machine-bound session ids: they name their machine, cannot be forged or retargeted
 * without the deployment key, and stay unguessable; plain ids are told apart.
 */
import { describe, expect, it } from '@jest/globals';
import { randomUUID } from 'node:crypto';
import { MachineSessionIds, plainSessionId } from '../../../src/fly/sessionIds.js';
import { deploymentKey } from '../../../src/modern/conversations.js';

const key = deploymentKey('deployment-secret-0123', 'session id');
const ids = new MachineSessionIds('683d479c1d6e98', key);

describe('MachineSessionIds', () => {
  it('mints <machine>.<random>.<mac> ids that read back as bound to the machine', () => {
    const id = ids.mint();
    expect(id).toMatch(/^683d479c1d6e98\.[A-Za-z0-9_-]{22}\.[A-Za-z0-9_-]{22}$/);
    expect(ids.read(id)).toEqual({ kind: 'bound', machine: '683d479c1d6e98' });
    // Another machine of the same deployment reads it the same way.
    expect(new MachineSessionIds('e2865641be4e18', key).read(id)).toEqual({ kind: 'bound', machine: '683d479c1d6e98' });
  });

  it('never mints the same id twice', () => {
    const minted = new Set(Array.from({ length: 1000 }, () => ids.mint()));
    expect(minted.size).toBe(1000);
  });

  it('reads a tampered mac, random part or machine as forged', () => {
    const [machine, random, mac] = ids.mint().split('.') as [string, string, string];
    const flip = (s: string) => `${s.slice(0, -1)}${s.endsWith('A') ? 'B' : 'A'}`;
    expect(ids.read(`${machine}.${random}.${flip(mac)}`)).toEqual({ kind: 'forged' });
    expect(ids.read(`${machine}.${flip(random)}.${mac}`)).toEqual({ kind: 'forged' });
    expect(ids.read(`e2865641be4e18.${random}.${mac}`)).toEqual({ kind: 'forged' });
  });

  it('reads an id minted with another deployment key as forged', () => {
    const other = new MachineSessionIds('683d479c1d6e98', deploymentKey('another-secret-0123', 'session id'));
    expect(ids.read(other.mint())).toEqual({ kind: 'forged' });
  });

  it('reads anything not shaped like a bound id as plain', () => {
    for (const id of [
      randomUUID(),
      plainSessionId(),
      '',
      'a.b.c',
      `${'m'.repeat(65)}.${'a'.repeat(22)}.${'b'.repeat(22)}`,
      `m1.${'a'.repeat(22)}.${'b'.repeat(22)}.x`,
    ]) {
      expect([id, ids.read(id)]).toEqual([id, { kind: 'plain' }]);
    }
  });

  it('refuses a machine id that could not be read back', () => {
    for (const bad of ['', 'a.b', 'with space', 'x'.repeat(65)]) expect(() => new MachineSessionIds(bad, key)).toThrow(TypeError);
  });
});
