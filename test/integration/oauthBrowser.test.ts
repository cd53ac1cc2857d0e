/**
 * The consent page in a real headless Chromium, used the way a person uses it: they read who
 * asks and where they will be sent back to, find the credential field by its label, type the
 * shared secret, approve (by mouse or by keyboard alone), fill in the entry's env value on the
 * second page, and end up at the client's redirect URI with `code`, `state` and `iss`. The
 * code then works: the v2 client finishes the flow and calls a tool, or the test redeems it
 * and the child sees the env value. Also: a wrong secret gets an error on the page that does
 * not repeat what was typed, the page will not render inside a frame of another origin, and
 * the basics a screen reader and a keyboard need are there.
 *
 * One browser for the whole file; no Chromium process is left running when it ends.
 */
import { afterAll, afterEach, beforeAll, expect, it } from '@jest/globals';
import type { Client } from '@modelcontextprotocol/client';
import { Client as V2Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { describeWithChromium, launchChromium, startLoopbackSite, type LoopbackSite } from '../helpers/browser.js';
import { EVERYTHING, EVERYTHING_ENTRY, fixtureEntry, startGateway, TEST_SECRET, type TestGateway } from '../helpers/gateway.js';
import {
  authorizeUrl,
  connectWithOAuth,
  HeadlessOAuthProvider,
  pkcePair,
  registerClient,
  selfSignedCert,
  startMetadataServer,
  tokenRequest,
  type MetadataServer,
} from '../helpers/oauthClient.js';
import { cmdline, descendantsOf, isAlive, waitFor, waitForNoDescendants } from '../helpers/procs.js';

const OAUTH_KEY = 'browser-oauth-key-0123456789abcdef-01234567';
const ENV_KEY = 'env';
const ENV_VALUE = 'sk-typed-in-the-browser-4d2e';
const CLIENT_NAME = 'Browser Test Client';
const STEP_TIMEOUT_MS = 10_000;
/** A common phone's screen, in CSS pixels. */
const PHONE = { width: 360, height: 800 };

let browser: Browser | undefined;
let context: BrowserContext;
let gw: TestGateway;
let docs: MetadataServer;
let site: LoopbackSite;
const clients: Client[] = [];

describeWithChromium('the consent page in a real browser', () => {
  beforeAll(async () => {
    const tls = await selfSignedCert();
    [browser, docs, site] = await Promise.all([launchChromium(), startMetadataServer(tls), startLoopbackSite()]);
    gw = await startGateway(
      { [EVERYTHING]: EVERYTHING_ENTRY, [ENV_KEY]: fixtureEntry('env-server.mjs', { allowedEnv: ['API_TOKEN'] }) },
      { oauthKey: OAUTH_KEY, oauthAllowLoopbackMetadata: true },
      { oauthMetadataCa: tls.cert },
    );
    context = await browser.newContext({ viewport: { width: 800, height: 900 } });
    context.setDefaultTimeout(STEP_TIMEOUT_MS);
  }, 60_000);

  afterEach(async () => {
    await Promise.allSettled(clients.splice(0).map((c) => c.close()));
    await Promise.all(context.pages().map((p) => p.close()));
  });

  afterAll(async () => {
    // Chromium's processes, taken before it closes: some (its zygotes) are reparented to init
    // as the browser exits, so "no descendants" alone would not see one left running.
    const chromiumPids = descendantsOf(process.pid).filter((pid) => cmdline(pid).includes('chromium'));
    await browser?.close();
    await gw?.close();
    await docs?.close();
    await site?.close();
    await waitForNoDescendants(process.pid, { message: 'the test process (Chromium, children)' });
    await waitFor(() => chromiumPids.every((pid) => !isAlive(pid)), { message: `Chromium's processes (${chromiumPids.join(', ')}) to exit` });
  }, 30_000);

  /** The page's dt/dd pairs, as a person reads them. */
  async function details(page: Page): Promise<Record<string, string>> {
    const terms = await page.locator('dt').allInnerTexts();
    const values = await page.locator('dd').allInnerTexts();
    return Object.fromEntries(terms.map((term, i) => [term, values[i] ?? '']));
  }

  /** What a screen reader and a keyboard need: lang, a title, a label for every field. */
  async function expectAccessibleBasics(page: Page): Promise<void> {
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    expect(await page.title()).not.toBe('');
    const fields = page.locator('input:not([type=hidden]), select, textarea');
    expect(await fields.count()).toBeGreaterThan(0);
    for (const field of await fields.all()) {
      const labels = await field.evaluate((el: any) => Array.from(el.labels ?? [], (label: any) => String(label.textContent).trim()));
      expect(labels.filter((text) => text !== '')).not.toEqual([]);
    }
  }

  /** The focused element: its tag, id and text, to follow the Tab order. */
  function focused(page: Page): Promise<string> {
    return page.evaluate(
      '(() => { const el = document.activeElement; return el ? `${el.tagName.toLowerCase()}#${el.id}:${(el.textContent || "").trim()}` : "" })()',
    ) as Promise<string>;
  }

  /** Waits until the browser has arrived at the loopback redirect URI; the query it brought. */
  async function arrivedBack(page: Page): Promise<URLSearchParams> {
    await page.waitForURL((url) => url.href.startsWith(site.callbackUrl));
    const received = site.callbacks.at(-1);
    expect(received).toBeDefined();
    expect(new URL(page.url()).search).toBe(`?${received!.toString()}`);
    // The client learns nothing of the consent page's address: no referrer.
    expect(site.callbackReferers.at(-1)).toBeUndefined();
    return received!;
  }

  it('v2 client by metadata document: the person reads who asks, types the secret by its label, approves, and the grant calls a tool', async () => {
    const path = '/browser-client.json';
    const clientId = docs.url(path);
    docs.serve(path, {
      client_id: clientId,
      client_name: CLIENT_NAME,
      redirect_uris: [site.callbackUrl],
      grant_types: ['authorization_code', 'refresh_token'],
      response_types: ['code'],
      token_endpoint_auth_method: 'none',
    });
    const provider = new HeadlessOAuthProvider(clientId, site.callbackUrl);

    const client = await connectWithOAuth(
      gw.url(EVERYTHING, 'mcp'),
      provider,
      async (authorizationUrl) => {
        const page = await context.newPage();
        const response = await page.goto(authorizationUrl.href);
        expect(response?.status()).toBe(200);
        await expectAccessibleBasics(page);
        await expect(page.getByRole('heading', { level: 1 }).innerText()).resolves.toBe('Allow access to an MCP server?');
        expect(await details(page)).toMatchObject({
          Application: CLIENT_NAME,
          'Client ID': clientId,
          'Published by': new URL(clientId).host,
          'Sends you back to': site.origin,
          'Will reach': `${EVERYTHING} (${gw.base}/${EVERYTHING}/mcp)`,
        });
        // The redirect URI is on this computer, and the page says so.
        expect(await page.getByText('can only send you back to a program on this computer').isVisible()).toBe(true);
        await page.getByLabel('Your gateway credential (the shared secret or your client token)').fill(TEST_SECRET);
        await page.getByRole('button', { name: 'Allow' }).click();
        const query = await arrivedBack(page);
        expect(query.get('iss')).toBe(gw.base);
        expect(query.get('state')).toBe(provider.lastState);
        expect(query.get('code')).toBeTruthy();
        expect(query.get('error')).toBeNull();
        return query;
      },
      { pin: '2026-07-28' },
    );
    clients.push(client);

    const result = await client.callTool({ name: 'echo', arguments: { message: 'approved in a browser' } });
    expect(result.content).toEqual([{ type: 'text', text: 'Echo: approved in a browser' }]);
  });

  it('by keyboard alone: Tab to the field, type, Tab to Allow, Enter; then the env value on the second page reaches the child', async () => {
    const registered = await registerClient(gw.base, { client_name: CLIENT_NAME, redirect_uris: [site.callbackUrl] });
    const clientId = registered.client_id as string;
    const resource = `${gw.base}/${ENV_KEY}/mcp`;
    const { verifier, challenge } = pkcePair();
    const url = authorizeUrl(gw.base, { client_id: clientId, code_challenge: challenge, resource, redirect_uri: site.callbackUrl, state: 'kb-state' });

    const page = await context.newPage();
    await page.goto(url.href);
    expect(await details(page)).toMatchObject({ Application: CLIENT_NAME, 'Sends you back to': site.origin });
    // From the top of the page: the first stop is the credential field, the next one Allow.
    await page.keyboard.press('Tab');
    expect(await focused(page)).toBe('input#credential:');
    await expect(page.getByLabel(/shared secret/).evaluate((el: any) => el === el.ownerDocument.activeElement)).resolves.toBe(true);
    await page.keyboard.type(TEST_SECRET);
    await page.keyboard.press('Tab');
    expect(await focused(page)).toBe('button#:Allow');
    await Promise.all([page.waitForURL(`${gw.base}/authorize`), page.keyboard.press('Enter')]);

    // The second page asks for the entry's env value, by its name, as a labelled field.
    expect(await page.title()).toBe(`Settings for ${ENV_KEY}`);
    await expectAccessibleBasics(page);
    await page.getByLabel('API_TOKEN').fill(ENV_VALUE);
    await page.keyboard.press('Tab');
    expect(await focused(page)).toBe('button#:Allow');
    await page.keyboard.press('Enter');
    const query = await arrivedBack(page);
    expect(query.get('state')).toBe('kb-state');
    expect(query.get('iss')).toBe(gw.base);

    const token = await tokenRequest(gw.base, {
      grant_type: 'authorization_code',
      code: query.get('code')!,
      code_verifier: verifier,
      redirect_uri: site.callbackUrl,
      client_id: clientId,
      resource,
    });
    expect(token.status).toBe(200);
    const client = new V2Client({ name: 'browser-test', version: '1' });
    await client.connect(
      new StreamableHTTPClientTransport(gw.url(ENV_KEY, 'mcp'), { requestInit: { headers: { Authorization: `Bearer ${token.body.access_token}` } } }),
    );
    clients.push(client);
    const seen = await client.callTool({ name: 'env', arguments: {} });
    const env = JSON.parse((seen.content as { text: string }[])[0]!.text) as Record<string, string>;
    expect(env.API_TOKEN).toBe(ENV_VALUE);
  });

  it('a wrong secret: an error on the page, what was typed is not in it, and nobody is sent back', async () => {
    const clientId = (await registerClient(gw.base, { client_name: CLIENT_NAME, redirect_uris: [site.callbackUrl] })).client_id as string;
    const url = authorizeUrl(gw.base, {
      client_id: clientId,
      code_challenge: pkcePair().challenge,
      resource: `${gw.base}/${EVERYTHING}/mcp`,
      redirect_uri: site.callbackUrl,
    });
    const before = site.callbacks.length;
    const typed = 'not-the-secret-typed-by-hand-93b1';

    const page = await context.newPage();
    await page.goto(url.href);
    const field = page.getByLabel(/shared secret/);
    await field.fill(typed);
    const [answer] = await Promise.all([
      page.waitForResponse((r) => r.url() === `${gw.base}/authorize` && r.request().method() === 'POST'),
      page.getByRole('button', { name: 'Allow' }).click(),
    ]);
    expect(answer.status()).toBe(401);
    await expect(page.getByRole('alert').innerText()).resolves.toBe('That credential is not valid.');
    expect(await page.content()).not.toContain(typed);
    expect(await field.inputValue()).toBe('');
    // The person can try again on the same page: the field is still there, by its label.
    await expectAccessibleBasics(page);
    expect(site.callbacks.length).toBe(before);
  });

  it('on a phone-sized screen: nothing wider than the screen, terms above their values, a registration not shown as a wall of characters', async () => {
    const clientId = (await registerClient(gw.base, { client_name: CLIENT_NAME, redirect_uris: [site.callbackUrl] })).client_id as string;
    expect(clientId.length).toBeGreaterThan(100); // a sealed registration
    const url = authorizeUrl(gw.base, {
      client_id: clientId,
      code_challenge: pkcePair().challenge,
      resource: `${gw.base}/${EVERYTHING}/mcp`,
      redirect_uri: site.callbackUrl,
    });

    const page = await context.newPage();
    await page.setViewportSize(PHONE);
    await page.goto(url.href);
    expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(PHONE.width);
    const shownId = (await details(page))['Client ID']!;
    expect(shownId.startsWith(clientId.slice(0, 16))).toBe(true);
    expect(shownId).not.toContain(clientId);
    expect(shownId).toContain('registered itself');
    // Each term stands above its value, so a value gets the whole width.
    const term = await page.locator('dt').first().boundingBox();
    const value = await page.locator('dd').first().boundingBox();
    expect(value!.x).toBe(term!.x);
    expect(value!.y).toBeGreaterThan(term!.y);
    const allow = await page.getByRole('button', { name: 'Allow' }).boundingBox();
    expect(allow!.x + allow!.width).toBeLessThanOrEqual(PHONE.width);
  });

  it('refuses to render inside a frame of another origin', async () => {
    const clientId = (await registerClient(gw.base, { client_name: CLIENT_NAME, redirect_uris: [site.callbackUrl] })).client_id as string;
    const url = authorizeUrl(gw.base, {
      client_id: clientId,
      code_challenge: pkcePair().challenge,
      resource: `${gw.base}/${EVERYTHING}/mcp`,
      redirect_uri: site.callbackUrl,
    });
    site.page(
      '/framing.html',
      `<!doctype html><html lang="en"><title>framing</title><h1>Another site</h1><iframe id="consent" title="consent" width="600" height="400" src="${url.href.replace(/&/g, '&amp;')}"></iframe></html>`,
    );

    const page = await context.newPage();
    const blocked = page.waitForEvent('console', (message) => /frame-ancestors|X-Frame-Options/i.test(message.text()));
    const framed = page.waitForResponse((r) => r.url().startsWith(`${gw.base}/authorize`));
    await page.goto(`${site.origin}/framing.html`, { waitUntil: 'load' });
    // The gateway answered the frame's request; the browser refused to show it.
    expect((await framed).headers()['content-security-policy']).toContain("frame-ancestors 'none'");
    expect((await blocked).text()).toMatch(/frame-ancestors 'none'|X-Frame-Options/);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    expect(frame).toBeDefined();
    expect(frame!.url()).not.toContain('/authorize');
    for (const f of page.frames()) {
      const title = await f.title().catch(() => '');
      expect(title).not.toBe('Allow access to an MCP server?');
      expect(
        await f
          .locator('#credential')
          .count()
          .catch(() => 0),
      ).toBe(0);
    }
  });
});
