/** The client configurations `mcp-warden commands url` prints: mcp-remote's --allow-http only where it is needed. */
import { describe, expect, it } from '@jest/globals';
import { urlReport } from '../../../src/whitelist/urls.js';

describe('urlReport', () => {
  it.each([
    ['http://127.0.0.1:8000', false],
    ['http://localhost:8000', false],
    ['http://[::1]:8000', false],
    ['https://gw.example.com', false],
    ['http://gw.example.com', true],
    // A name that merely starts with 127. is another machine.
    ['http://127.gw.example.com', true],
  ])('%s: --allow-http %s', (base, allowHttp) => {
    expect(urlReport('demo', base).includes('--allow-http')).toBe(allowHttp);
  });
});
