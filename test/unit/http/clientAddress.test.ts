import { describe, expect, it } from '@jest/globals';
import type { IncomingMessage } from 'node:http';
import { addressResolver, clientKey, parseTrustedProxies } from '../../../src/http/clientAddress.js';

function req(peer: string, headers: Record<string, string | string[]> = {}): IncomingMessage {
  const distinct = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v : [v]]));
  const plain = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), Array.isArray(v) ? v.join(', ') : v]));
  return { socket: { remoteAddress: peer }, headers: plain, headersDistinct: distinct } as unknown as IncomingMessage;
}

describe('addressResolver', () => {
  it('without trusted proxies is the socket peer, whatever the headers say', () => {
    const of = addressResolver([]);
    expect(of(req('192.0.2.1', { 'x-forwarded-for': '198.51.100.1', 'fly-client-ip': '198.51.100.2' }))).toBe('192.0.2.1');
    expect(of(req('::ffff:192.0.2.1'))).toBe('192.0.2.1');
  });

  it('reads X-Forwarded-For only from a trusted peer, taking the nearest untrusted hop', () => {
    const of = addressResolver(['10.0.0.0/8', '192.0.2.9']);
    expect(of(req('10.1.2.3', { 'x-forwarded-for': '198.51.100.1' }))).toBe('198.51.100.1');
    expect(of(req('10.1.2.3', { 'x-forwarded-for': '203.0.113.5, 198.51.100.1, 10.9.9.9' }))).toBe('198.51.100.1');
    expect(of(req('10.1.2.3', { 'x-forwarded-for': ['203.0.113.5', '198.51.100.1'] }))).toBe('198.51.100.1');
    expect(of(req('192.0.2.9', { 'x-forwarded-for': '198.51.100.1' }))).toBe('198.51.100.1');
    expect(of(req('192.0.2.10', { 'x-forwarded-for': '198.51.100.1' }))).toBe('192.0.2.10');
    expect(of(req('10.1.2.3', { 'x-forwarded-for': '10.0.0.1, 10.0.0.2' }))).toBe('10.0.0.1');
    expect(of(req('10.1.2.3', { 'x-forwarded-for': 'not-an-ip' }))).toBe('10.1.2.3');
    expect(of(req('10.1.2.3'))).toBe('10.1.2.3');
  });

  it('with fly takes a well-formed Fly-Client-IP and nothing else', () => {
    const of = addressResolver(['fly']);
    expect(of(req('172.16.0.1', { 'fly-client-ip': '2001:db8::1', 'x-forwarded-for': '198.51.100.1' }))).toBe('2001:db8::1');
    expect(of(req('172.16.0.1', { 'fly-client-ip': 'nonsense' }))).toBe('172.16.0.1');
  });

  it('refuses entries that are neither fly nor an address or CIDR, naming them', () => {
    for (const bad of ['flyio', '10.0.0.0/33', '::/129', 'example.com', '10.0.0.0/x']) {
      expect(() => parseTrustedProxies([bad])).toThrow(new RegExp(`trusted proxy "${bad.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}"`));
    }
  });
});

describe('clientKey', () => {
  it('is the principal, never an address', () => {
    expect(clientKey({ kind: 'shared-secret', clientId: 'shared-secret', role: 'default' })).toBe('shared-secret:shared-secret');
    expect(clientKey({ kind: 'client', clientId: 'ann', role: 'user' })).toBe('client:ann');
  });
});
