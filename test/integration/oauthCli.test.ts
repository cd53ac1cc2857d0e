/**
 * The built `mcp-warden oauth grants|revoke` against a running gateway: the grant table
 * (never a token), revocation by grant id, the next request refused, and the admin
 * credential taken from WARDEN_ADMIN_TOKEN only. Needs `npm run build` (npm test does).
 */
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { EVERYTHING, startGateway, TEST_ADMIN_TOKEN, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import { runCli as run } from '../helpers/cli.js';
import { rawGrant } from '../helpers/oauthClient.js';
import { waitForNoDescendants } from '../helpers/procs.js';

let gw: TestGateway;

/** `mcp-warden oauth <args>` with `env` added to PATH and HOME. */
const runCli = (args: readonly string[], env: Record<string, string> = {}) => run(['oauth', ...args], { env });

beforeAll(async () => {
  gw = await startGateway(undefined, { oauthKey: 'cli-oauth-key-0123456789abcdef-0123456789ab' });
});

afterAll(async () => {
  await gw.close();
  await waitForNoDescendants(process.pid);
});

describe('mcp-warden oauth', () => {
  it("lists grants and revokes one; the grant's token is refused afterwards", async () => {
    const { tokens } = await rawGrant(gw.base, `${gw.base}/${EVERYTHING}/mcp`, TEST_SECRET);
    const listed = await runCli(['grants', '--remote', gw.base, '--json'], { WARDEN_ADMIN_TOKEN: TEST_ADMIN_TOKEN });
    expect(listed.code).toBe(0);
    expect(listed.stdout).not.toContain(tokens.access_token);
    const grant = (JSON.parse(listed.stdout) as { grants: { grant: string; via: string }[] }).grants[0]!;
    expect(grant.via).toBe('shared-secret');
    const table = await runCli(['grants', '--remote', gw.base], { WARDEN_ADMIN_TOKEN: TEST_ADMIN_TOKEN });
    expect(table.stdout).toMatch(/^GRANT +CLIENT +VIA +ROLE/);
    expect(table.stdout).toContain(grant.grant);

    const revoked = await runCli(['revoke', grant.grant, '--remote', gw.base], { WARDEN_ADMIN_TOKEN: TEST_ADMIN_TOKEN });
    expect(revoked).toEqual({ code: 0, stdout: `revoked: ${grant.grant}\n`, stderr: '' });
    const res = await fetch(gw.url(EVERYTHING, 'mcp'), {
      method: 'POST',
      headers: { Authorization: `Bearer ${tokens.access_token}`, 'Content-Type': 'application/json' },
      body: '{}',
    });
    expect(res.status).toBe(401);
  });

  it('needs WARDEN_ADMIN_TOKEN, and says when the gateway refuses the credential', async () => {
    expect((await runCli(['grants', '--remote', gw.base])).code).toBe(2);
    const refused = await runCli(['grants', '--remote', gw.base], { WARDEN_ADMIN_TOKEN: TEST_SECRET });
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/HTTP 403/);
    expect(refused.stderr).not.toContain(TEST_SECRET);
  });
});
