/**
 * A real headless browser for tests: Debian's Chromium (`apt-get install chromium`), driven
 * over the DevTools protocol by playwright-core, which never downloads a browser of its own.
 * Each launch gets a fresh, empty profile (playwright-core makes a temporary user data dir and
 * removes it on close) and the flags that keep Chromium off the network: the machine has none,
 * and without them Chromium keeps trying to reach its update, sync and field-trial services.
 *
 * Test files that need it wrap their tests in `describeWithChromium`. Where Chromium is not
 * installed those tests are skipped, with one line on stderr per test file that imports this
 * helper; under CI=true a missing Chromium fails the file instead, so CI always runs them.
 * WARDEN_TEST_CHROMIUM names another binary (the test of this behaviour points it at a path
 * that does not exist).
 *
 * Also here: a loopback http server that plays the client's redirect URI (it records the
 * query of every request, so a test reads what the browser was sent back with) and serves
 * pages of another origin (a page that frames the consent page).
 */
import { accessSync, constants } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe } from '@jest/globals';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.WARDEN_TEST_CHROMIUM || '/usr/bin/chromium';
export const CHROMIUM_MISSING_LINE = 'skipped: chromium not installed; `.ci/run` installs it';
/** Headless, no sandbox (tests run as root), and nothing that reaches for the network by itself. */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
] as const;
const LAUNCH_TIMEOUT_MS = 30_000;

function executable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
}

/** Whether the Chromium binary is there and executable (checked once, at module load). */
export const chromiumInstalled: boolean = executable(CHROMIUM);

if (!chromiumInstalled) {
  if (process.env.CI === 'true' || process.env.CI === '1') {
    throw new Error(`${CHROMIUM} not found, and CI=true: CI must run the browser tests (apt-get install chromium, as .ci/run does)`);
  }
  process.stderr.write(`${CHROMIUM_MISSING_LINE}\n`);
}

/** `describe` where Chromium is installed, `describe.skip` where it is not. */
export const describeWithChromium: typeof describe = chromiumInstalled ? describe : (describe.skip as typeof describe);

/** Launches Chromium headless, as a child of this process; close it with `browser.close()`. */
export async function launchChromium(): Promise<Browser> {
  if (!chromiumInstalled) throw new Error(`${CHROMIUM} not found: install chromium (apt-get install chromium)`);
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: [...CHROMIUM_FLAGS], timeout: LAUNCH_TIMEOUT_MS });
}

export interface LoopbackSite {
  /** `http://127.0.0.1:PORT` */
  readonly origin: string;
  /** The redirect URI it plays: `{origin}/callback`. */
  readonly callbackUrl: string;
  /** The query of every request to /callback, in order. */
  readonly callbacks: URLSearchParams[];
  /** The Referer header of every request to /callback (undefined: none was sent). */
  readonly callbackReferers: (string | undefined)[];
  /** Serves `html` at `path` (with no security headers at all). */
  page(path: string, html: string): void;
  close(): Promise<void>;
}

const CALLBACK_PAGE = '<!doctype html><html lang="en"><title>Connected</title><p>You can close this page.</p></html>';

/** A plain http server on a random loopback port: a redirect URI, and pages of its own origin. */
export async function startLoopbackSite(): Promise<LoopbackSite> {
  const pages = new Map<string, string>();
  const callbacks: URLSearchParams[] = [];
  const callbackReferers: (string | undefined)[] = [];
  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    if (url.pathname === '/callback') {
      callbacks.push(url.searchParams);
      callbackReferers.push(req.headers.referer);
      return void res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(CALLBACK_PAGE);
    }
    const html = pages.get(url.pathname);
    if (html === undefined) return void res.writeHead(404).end();
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' }).end(html);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    callbackUrl: `${origin}/callback`,
    callbacks,
    callbackReferers,
    page: (path, html) => void pages.set(path, html),
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
