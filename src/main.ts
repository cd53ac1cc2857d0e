#!/usr/bin/env node
/**
 * The CLI: flags/env -> settings -> gateway -> listen; signals drain it. The only place
 * that calls process.exit. stdout stays empty: the banner and logs go to stderr (only
 * `--version` and the `audit`, `oauth` and `commands` subcommands answer on stdout).
 */
import { randomBytes } from 'node:crypto';
import { runAuditCli } from './audit/cli.js';
import { runOAuthCli } from './oauth/cli.js';
import { ClientsFileError } from './auth/clients.js';
import { CommandsFileError } from './config/commands.js';
import { PolicyError } from './policy/compile.js';
import { parseSettings, SettingsError, USAGE, type Settings } from './config/settings.js';
import { installCrashGuards } from './crashGuards.js';
import { createGateway } from './gateway.js';
import { createLogger } from './logging/logger.js';
import { PACKAGE_VERSION } from './version.js';
import { runCommandsCli } from './whitelist/cli.js';
import { endpointPaths } from './whitelist/urls.js';

function fail(message: string): never {
  process.stderr.write(`mcp-warden: ${message}\n`);
  process.exit(2);
}

async function main(): Promise<void> {
  // `mcp-warden audit ...` is an offline tool that answers on stdout; the gateway never does.
  if (process.argv[2] === 'audit') {
    process.exit(
      await runAuditCli(
        process.argv.slice(3),
        process.env,
        (s) => process.stdout.write(s),
        (s) => process.stderr.write(s),
      ),
    );
  }
  // `mcp-warden oauth ...` drives a running gateway's admin API (grants, revocation).
  if (process.argv[2] === 'oauth') {
    process.exit(
      await runOAuthCli(
        process.argv.slice(3),
        process.env,
        (s) => process.stdout.write(s),
        (s) => process.stderr.write(s),
      ),
    );
  }
  // `mcp-warden commands ...` edits the whitelist (a file, or a running gateway's admin API).
  if (process.argv[2] === 'commands') {
    process.exit(
      await runCommandsCli(
        process.argv.slice(3),
        process.env,
        (s) => process.stdout.write(s),
        (s) => process.stderr.write(s),
      ),
    );
  }
  let settings: Settings;
  try {
    const cli = parseSettings(process.argv.slice(2), process.env);
    if (cli.help) {
      process.stderr.write(`${USAGE}\n`);
      process.exit(0);
    }
    if (cli.version) {
      process.stdout.write(`${PACKAGE_VERSION}\n`);
      process.exit(0);
    }
    settings = cli.settings;
  } catch (error) {
    if (error instanceof SettingsError) fail(`${error.message}\n${USAGE}`);
    throw error;
  }
  const logger = createLogger(settings.logLevel);
  let generated = false;
  if (!settings.secret && process.env.FLY_APP_NAME) {
    // Every machine would invent its own secret, and a client's requests land on either.
    fail('WARDEN_SECRET is not set. On Fly.io every machine needs the same secret: fly secrets set WARDEN_SECRET=$(openssl rand -base64 24)');
  }
  if (!settings.secret) {
    settings = { ...settings, secret: randomBytes(24).toString('base64url') };
    generated = true;
  }
  delete process.env.WARDEN_SECRET;
  delete process.env.WARDEN_ADMIN_TOKEN;
  delete process.env.WARDEN_OAUTH_KEY;
  delete process.env.WARDEN_OAUTH_KEY_PREVIOUS;

  let gateway;
  try {
    gateway = await createGateway(settings, { logger });
  } catch (error) {
    // Configuration that can't be used: say which file and key, exit 2.
    if (error instanceof CommandsFileError || error instanceof PolicyError || error instanceof ClientsFileError) fail(error.message);
    throw error;
  }
  installCrashGuards(logger);

  // Before listening: a SIGTERM that comes as soon as the port is announced still stops
  // the gateway (and the spares it may have started) cleanly.
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) {
      logger.warn('second signal, exiting now', { signal });
      process.exit(1);
    }
    stopping = true;
    logger.info('shutting down', { signal });
    const deadline = setTimeout(() => {
      logger.error('shutdown deadline passed, exiting');
      process.exit(1);
    }, settings.shutdownGraceMs);
    deadline.unref();
    gateway.close().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error('shutdown failed', { error: String(error) });
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));

  const address = await gateway.listen();
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const base = `http://${host}:${address.port}`;
  const firstKey = gateway.registry.keys()[0] ?? '<command>';
  const url = `${base}${endpointPaths(firstKey).mcp}`;
  if (generated) {
    const endpoints = gateway.registry
      .keys()
      .map((key) => `  ${base}${endpointPaths(key).mcp}\n`)
      .join('');
    process.stderr.write(
      `\nmcp-warden: WARDEN_SECRET is not set, so this run uses a generated secret:\n\n  ${settings.secret}\n\n` +
        `Connect with the header  Authorization: Bearer ${settings.secret}\n` +
        `Example: ${url}  (or /sse for legacy SSE)\n` +
        `Every server (mcp-warden commands url KEY prints client configurations):\n${endpoints}\n`,
    );
  }
}

main().catch((error: unknown) => {
  process.stderr.write(`mcp-warden: failed to start: ${error instanceof Error ? error.message : String(error)}\n`);
  process.exit(1);
});
