/**
 * Keeps the gateway alive through a stray bug: an unhandled rejection or uncaught
 * exception is logged and the process carries on (every session has its own state, so
 * one failure must not end them all). Installed by the CLI only.
 */
import type { Logger } from './logging/logger.js';

export function installCrashGuards(logger: Logger): () => void {
  const onRejection = (reason: unknown) => {
    logger.error('unhandled rejection (gateway keeps running)', {
      error: reason instanceof Error ? (reason.stack ?? reason.message) : String(reason),
    });
  };
  const onException = (error: Error) => {
    logger.error('uncaught exception (gateway keeps running)', { error: error.stack ?? String(error) });
  };
  process.on('unhandledRejection', onRejection);
  process.on('uncaughtException', onException);
  return () => {
    process.off('unhandledRejection', onRejection);
    process.off('uncaughtException', onException);
  };
}
