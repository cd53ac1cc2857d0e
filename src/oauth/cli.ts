/**
 * `mcp-warden oauth grants|revoke`: the admin API of OAuth grants (src/oauth/adminApi.ts)
 * from the command line, against a running gateway. The admin credential comes from
 * WARDEN_ADMIN_TOKEN only, never from argv (where `ps` and shell history would show it).
 *
 * Exit codes: 0 done, 1 the gateway refused or could not be reached, 2 usage error.
 */
import { parseArgs } from 'node:util';

const OAUTH_USAGE = `usage: mcp-warden oauth grants [--remote URL] [--json]
       mcp-warden oauth revoke <grant id | client_id> [--remote URL]

  grants          list the live OAuth grants: id, client, credential used at consent,
                  role, created and last used (never a token or an env value)
  revoke ID       revoke one grant (an id starting with g_), or every grant of a client
                  (any other id: a client_id)
  --remote URL    the gateway (default http://127.0.0.1:$PORT, PORT default 8000)
  --json          print the answer as JSON

The admin credential is read from WARDEN_ADMIN_TOKEN.
exit status: 0 done, 1 refused or unreachable, 2 usage error`;

class OAuthUsageError extends Error {
  override name = 'OAuthUsageError';
}

interface Grant {
  readonly grant: string;
  readonly client: { readonly id: string; readonly name: string };
  readonly via: string;
  readonly role: string;
  readonly resource: string;
  readonly createdAt: string;
  readonly lastUsedAt: string;
}

/** Long client ids (sealed registrations) are shortened for the table; --json shows them whole. */
function short(text: string, max = 40): string {
  return text.length <= max ? text : `${text.slice(0, max - 1)}…`;
}

function table(grants: readonly Grant[]): string {
  if (grants.length === 0) return 'no OAuth grants\n';
  const rows = [
    ['GRANT', 'CLIENT', 'VIA', 'ROLE', 'RESOURCE', 'CREATED', 'LAST USED'],
    ...grants.map((g) => [g.grant, short(`${g.client.name} (${g.client.id})`), g.via, g.role, g.resource, g.createdAt, g.lastUsedAt]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return (
    rows
      .map((r) =>
        r
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

/** Runs `oauth <subcommand>` (argv after `oauth`); resolves the exit code. */
export async function runOAuthCli(argv: readonly string[], env: NodeJS.ProcessEnv, out: (s: string) => void, err: (s: string) => void): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    (command === undefined ? err : out)(`${OAUTH_USAGE}\n`);
    return command === undefined ? 2 : 0;
  }
  let remote: string;
  let target: string | undefined;
  let json: boolean;
  let token: string;
  try {
    if (command !== 'grants' && command !== 'revoke') throw new OAuthUsageError(`unknown subcommand ${JSON.stringify(command)}`);
    const parsed = parseArgs({ args: [...rest], options: { remote: { type: 'string' }, json: { type: 'boolean' } }, allowPositionals: true, strict: true });
    remote = (parsed.values.remote ?? `http://127.0.0.1:${env.PORT || '8000'}`).replace(/\/+$/, '');
    if (!/^https?:\/\//.test(remote) || !URL.canParse(remote)) throw new OAuthUsageError('--remote must be an http(s) URL');
    json = parsed.values.json === true;
    if (command === 'revoke') {
      if (parsed.positionals.length !== 1) throw new OAuthUsageError('revoke takes one grant id or client_id');
      target = parsed.positionals[0];
    } else if (parsed.positionals.length > 0) throw new OAuthUsageError('grants takes no argument');
    token = env.WARDEN_ADMIN_TOKEN ?? '';
    if (token === '') throw new OAuthUsageError('WARDEN_ADMIN_TOKEN is not set: the admin API needs the admin credential');
  } catch (error) {
    if (!(error instanceof OAuthUsageError) && !(error instanceof TypeError)) throw error;
    err(`mcp-warden oauth: ${(error as Error).message}\n${OAUTH_USAGE}\n`);
    return 2;
  }
  const headers = { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' };
  let res: Response;
  try {
    res =
      command === 'grants'
        ? await fetch(`${remote}/admin/oauth/grants`, { headers })
        : await fetch(`${remote}/admin/oauth/revoke`, {
            method: 'POST',
            headers,
            body: JSON.stringify(target!.startsWith('g_') ? { grant: target } : { client: target }),
          });
  } catch (error) {
    err(`mcp-warden oauth: cannot reach ${remote}: ${error instanceof Error && error.cause instanceof Error ? error.cause.message : String(error)}\n`);
    return 1;
  }
  const text = await res.text();
  if (!res.ok) {
    const message = /"message":"([^"]*)"/.exec(text)?.[1] ?? text.slice(0, 200);
    err(`mcp-warden oauth: the gateway answered HTTP ${res.status}: ${message}\n`);
    return 1;
  }
  const body = JSON.parse(text) as { grants?: Grant[]; revoked?: string[] };
  if (json) out(`${JSON.stringify(body, null, 2)}\n`);
  else if (command === 'grants') out(table(body.grants ?? []));
  else out(body.revoked && body.revoked.length > 0 ? `revoked: ${body.revoked.join(', ')}\n` : 'nothing to revoke: no live grant matched\n');
  return 0;
}
