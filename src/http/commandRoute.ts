/**
 * Resolves `/<encoded command>/<endpoint>` to a whitelisted CommandSpec. The raw path
 * segment is percent-decoded exactly once and must equal a whitelist key exactly;
 * anything else is 404 `unknown command`, before any process is spawned.
 */
import type { Request, RequestHandler } from 'express';
import { decodeCommandSegment, type CommandRegistry } from '../commands/registry.js';
import type { CommandSpec } from '../commands/types.js';
import { UnknownCommandError } from '../errors.js';
import { sendError } from './respond.js';

export type Endpoint = 'sse' | 'messages' | 'mcp';

declare module 'express-serve-static-core' {
  interface Request {
    command?: CommandSpec;
    endpoint?: Endpoint;
  }
}

const ROUTE = /^\/([^/]+)\/(sse|messages|mcp)\/?$/;

export function commandRoute(registry: CommandRegistry): RequestHandler {
  return (req, res, next) => {
    // req.path is not percent-decoded, so an encoded "/" stays inside the segment.
    const match = ROUTE.exec(req.path);
    const key = match?.[1] === undefined ? undefined : decodeCommandSegment(match[1]);
    const command = key === undefined ? undefined : registry.get(key);
    if (!command) {
      sendError(res, new UnknownCommandError());
      return;
    }
    req.command = command;
    req.endpoint = match?.[2] as Endpoint;
    next();
  };
}

export function commandOf(req: Request): CommandSpec {
  if (!req.command) throw new UnknownCommandError();
  return req.command;
}
