/**
 * The whitelist at start: from the file, or, with REDIS_URL, from Redis (seeded from the file
 * when Redis holds none). A whitelist that does not validate stops the start (exit 2), its
 * error naming the file (or Redis key) and the entry.
 */
import { CommandRegistry } from '../commands/registry.js';
import { loadCommandsFile } from '../config/commands.js';
import type { Logger } from '../logging/logger.js';
import { redactRedisUrl } from '../redis/connect.js';
import { validateDocument } from './document.js';
import { RedisSource } from './redisSource.js';
import { FileSource, type WhitelistSource } from './source.js';

export interface WhitelistSettings {
  readonly commandsFile: string;
  readonly commandsPollMs: number;
  readonly redisUrl?: string;
  readonly redisPrefix: string;
}

export async function openWhitelist(settings: WhitelistSettings, logger: Logger): Promise<{ registry: CommandRegistry; source: WhitelistSource }> {
  if (settings.redisUrl === undefined) {
    const registry = new CommandRegistry(await loadCommandsFile(settings.commandsFile));
    return { registry, source: new FileSource(settings.commandsFile, { pollMs: settings.commandsPollMs }) };
  }
  const { source, seeded } = await RedisSource.open({
    redisUrl: settings.redisUrl,
    prefix: settings.redisPrefix,
    file: settings.commandsFile,
    logger,
    pollMs: settings.commandsPollMs,
  });
  try {
    const registry = new CommandRegistry(validateDocument(await source.read(), source.file, source.name));
    logger.info(seeded ? 'whitelist kept in Redis, seeded from the file' : 'whitelist kept in Redis; the file is not read', {
      source: source.name,
      redis: redactRedisUrl(settings.redisUrl),
      file: settings.commandsFile,
    });
    return { registry, source };
  } catch (error) {
    await source.close();
    throw error;
  }
}
