/**
 * What both transports do to open a session: check the request's ENV_* headers, lease a
 * child with them, and tie a client transport and that child together through a bridge
 * that unregisters the session when either side ends.
 */
import type { Request } from 'express';
import type { Transport } from '@modelcontextprotocol/sdk/shared/transport.js';
import type { Principal } from '../auth/bearer.js';
import { Bridge } from '../bridge/bridge.js';
import { extractEnvHeaders, validateEnvHeaders } from '../commands/env.js';
import type { CommandSpec } from '../commands/types.js';
import type { Logger } from '../logging/logger.js';
import type { ChildTransport } from '../process/childTransport.js';
import type { ProcessManager } from '../process/manager.js';
import { Session, type SessionStore, type TransportKind } from './sessions.js';

export interface SessionFactoryDeps {
  readonly logger: Logger;
  readonly sessions: SessionStore;
  readonly processes: ProcessManager;
}

export class SessionFactory {
  constructor(private readonly deps: SessionFactoryDeps) {}

  /** Validates the request's env headers (400 on refusal) and starts a child with them. */
  async leaseChild(req: Request, spec: CommandSpec): Promise<ChildTransport> {
    const accepted = validateEnvHeaders(extractEnvHeaders(req.headersDistinct), spec);
    return this.deps.processes.lease(spec, accepted);
  }

  /**
   * Ties `client` and `child` together. The caller starts the bridge, then registers the
   * session once the client transport has an id; closing either side unregisters it.
   */
  connect(client: Transport, child: ChildTransport, spec: CommandSpec, kind: TransportKind): SessionLink {
    const { logger, sessions } = this.deps;
    const link: SessionLink = {
      session: undefined,
      bridge: new Bridge(client, child, {
        logger,
        tags: { command: spec.key, transport: kind },
        onActivity: () => link.session?.touch(),
      }),
      register(id: string, principal: Principal): Session {
        const session = new Session(id, kind, spec.key, principal, link.bridge);
        link.session = session;
        sessions.add(session);
        logger.info('session opened', { session: session.idHash, command: spec.key, transport: kind, pid: child.pid });
        return session;
      },
    };
    link.bridge.onclose = () => {
      const session = link.session;
      if (!session) return;
      sessions.delete(session);
      logger.info('session closed', { session: session.idHash, command: spec.key, transport: kind });
    };
    return link;
  }
}

/** A bridge and, once registered, the session that owns it. */
export interface SessionLink {
  session: Session | undefined;
  readonly bridge: Bridge;
  register(id: string, principal: Principal): Session;
}
