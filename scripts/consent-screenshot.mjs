// Takes docs/consent-page.png: starts a gateway (from dist/, so run `npm run build` first) with
// OAuth on, registers a client the way claude.ai does (name "Claude", redirect URI on
// claude.ai), opens its consent page for the whitelist key "github" in Debian's headless
// Chromium (playwright-core, no downloaded browser) and captures the whole page.
//
//   node scripts/consent-screenshot.mjs [out.png] [width in CSS pixels] [consent|env|error]
//
// Defaults: docs/consent-page.png, 720, consent. `env` captures the second page (the entry's
// env values), `error` the consent page after a wrong credential; use a narrow width (360) to
// see the layout on a phone.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import winston from 'winston';
import { chromium } from 'playwright-core';
import { validateSettings } from '../dist/config/settings.js';
import { createGateway } from '../dist/gateway.js';

const out = process.argv[2] ?? fileURLToPath(new URL('../docs/consent-page.png', import.meta.url));
const width = Number(process.argv[3] ?? 720);
const which = process.argv[4] ?? 'consent';
const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];
const PUBLIC_URL = 'https://mcp.example.com';
const KEY = 'github';
const SECRET = randomBytes(24).toString('base64url');

const dir = mkdtempSync(join(tmpdir(), 'warden-screenshot-'));
const commandsFile = join(dir, 'allowed-commands.json');
writeFileSync(
  commandsFile,
  JSON.stringify({ [KEY]: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-github'], allowedEnv: ['GITHUB_PERSONAL_ACCESS_TOKEN'] } }),
);
const logger = winston.createLogger({ silent: true, transports: [new winston.transports.Console()] });
const gateway = await createGateway(
  validateSettings({
    host: '127.0.0.1',
    port: 0,
    commandsFile,
    secret: SECRET,
    poolMin: 0,
    oauthKey: randomBytes(48).toString('base64'),
    publicUrl: PUBLIC_URL,
  }),
  { logger },
);
const { port } = await gateway.listen();
const base = `http://127.0.0.1:${port}`;
let browser;
try {
  const registered = await fetch(`${base}/register`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({
      client_name: 'Claude',
      redirect_uris: ['https://claude.ai/api/mcp/auth_callback'],
      grant_types: ['authorization_code', 'refresh_token'],
      token_endpoint_auth_method: 'none',
    }),
  });
  if (registered.status !== 201) throw new Error(`register: HTTP ${registered.status} ${await registered.text()}`);
  const { client_id: clientId } = await registered.json();
  const url = new URL(`${base}/authorize`);
  const challenge = createHash('sha256').update(randomBytes(32).toString('base64url')).digest('base64url');
  const params = {
    response_type: 'code',
    client_id: clientId,
    redirect_uri: 'https://claude.ai/api/mcp/auth_callback',
    code_challenge: challenge,
    code_challenge_method: 'S256',
    state: randomBytes(16).toString('base64url'),
    scope: 'mcp',
    resource: `${PUBLIC_URL}/${KEY}/mcp`,
  };
  for (const [name, value] of Object.entries(params)) url.searchParams.set(name, value);

  browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: FLAGS });
  const page = await browser.newPage({ viewport: { width, height: 400 }, deviceScaleFactor: 1 });
  const shown = await page.goto(url.href);
  if (shown?.status() !== 200) throw new Error(`authorize: HTTP ${shown?.status()} ${await page.innerText('body')}`);
  const field = page.getByLabel(/shared secret/);
  if (which === 'env') {
    await field.fill(SECRET);
    await Promise.all([page.waitForURL(`${base}/authorize`), page.getByRole('button', { name: 'Allow' }).click()]);
  } else if (which === 'error') {
    await field.fill('not-the-secret');
    await Promise.all([page.waitForURL(`${base}/authorize`), page.getByRole('button', { name: 'Allow' }).click()]);
  }
  await page.screenshot({ path: out, fullPage: true });
  process.stdout.write(`${out}\n`);
} finally {
  await browser?.close();
  await gateway.close();
  rmSync(dir, { recursive: true, force: true });
}
