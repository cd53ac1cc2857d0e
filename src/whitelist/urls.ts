/**
 * Where a whitelist entry is reached, and the ready-to-paste client configurations that
 * `mcp-warden commands url KEY` prints. The path segment is `encodeURIComponent(key)`: the
 * gateway decodes it exactly once (docs/whitelist.md, "Keys and URLs").
 */
import { isLoopbackAddress } from '../http/hostGuard.js';

export interface EndpointPaths {
  /** Streamable HTTP (both protocol eras). */
  readonly mcp: string;
  /** Legacy HTTP+SSE. */
  readonly sse: string;
}

export function endpointPaths(key: string): EndpointPaths {
  const segment = encodeURIComponent(key);
  return { mcp: `/${segment}/mcp`, sse: `/${segment}/sse` };
}

/** `base` without a trailing slash. */
export function trimBase(base: string): string {
  return base.replace(/\/+$/, '');
}

/** A client-side name for the server: letters, digits, `-` and `_` (what Claude Code accepts). */
export function serverName(key: string): string {
  const name = key
    .replace(/[^A-Za-z0-9_-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 64);
  return name === '' ? 'warden' : name;
}

/** `word` as one shell word (single-quoted when it needs quoting). */
export function shellWord(word: string): string {
  if (/^[A-Za-z0-9_./:@%+=,-]+$/.test(word)) return word;
  return `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command line for display: each word shell-quoted as needed. */
export function commandLine(words: readonly string[]): string {
  return words.map(shellWord).join(' ');
}

/** The text of `mcp-warden commands url`: endpoints, then one configuration per client. */
export function urlReport(key: string, base: string): string {
  const root = trimBase(base);
  const paths = endpointPaths(key);
  const mcp = `${root}${paths.mcp}`;
  const sse = `${root}${paths.sse}`;
  const name = serverName(key);
  const json = (value: unknown) => JSON.stringify(value, null, 2);
  const indent = (text: string) => text.replace(/^/gm, '  ');
  const mcpUrl = new URL(mcp);
  const plainHttp = mcpUrl.protocol === 'http:' && !isLoopbackAddress(mcpUrl.hostname);
  const sections = [
    `Endpoints of ${JSON.stringify(key)}:\n  Streamable HTTP  ${mcp}\n  SSE (legacy)     ${sse}`,
    `$WARDEN_SECRET below stands for your credential: the shared secret or your own client token.`,
    `Claude Code:\n${indent(`claude mcp add --transport http ${shellWord(name)} ${shellWord(mcp)} --header "Authorization: Bearer $WARDEN_SECRET"`)}`,
    `Cursor (~/.cursor/mcp.json; Cursor reads WARDEN_SECRET from its environment):\n${indent(
      json({ mcpServers: { [name]: { url: mcp, headers: { Authorization: 'Bearer ${env:WARDEN_SECRET}' } } } }),
    )}`,
    `Claude Desktop (claude_desktop_config.json), through mcp-remote:\n${indent(
      json({
        mcpServers: {
          [name]: {
            command: 'npx',
            args: ['-y', 'mcp-remote', mcp, '--header', 'Authorization:${AUTH_HEADER}', ...(plainHttp ? ['--allow-http'] : [])],
            env: { AUTH_HEADER: 'Bearer paste-the-secret-here' },
          },
        },
      }),
    )}\n  (no space after "Authorization:" in args: some clients mangle arguments with spaces${plainHttp ? '; --allow-http because the URL is plain http and not localhost' : ''})`,
    `claude.ai (Settings > Connectors > Add custom connector), URL:\n  ${mcp}\n  Only useful when the gateway's OAuth authorization server is on: claude.ai signs in with OAuth and cannot send the secret as a header.`,
    `TypeScript SDK (npm i @modelcontextprotocol/sdk):\n${indent(sdkSnippet(mcp))}`,
  ];
  return `${sections.join('\n\n')}\n`;
}

function sdkSnippet(url: string): string {
  return [
    `import { Client } from '@modelcontextprotocol/sdk/client/index.js';`,
    `import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';`,
    ``,
    `const transport = new StreamableHTTPClientTransport(new URL(${JSON.stringify(url)}), {`,
    '  requestInit: { headers: { Authorization: `Bearer ${process.env.WARDEN_SECRET}` } },',
    `});`,
    `const client = new Client({ name: 'my-app', version: '1.0.0' });`,
    `await client.connect(transport);`,
    `console.log(await client.listTools());`,
    `await transport.terminateSession();`,
    `await client.close();`,
  ].join('\n');
}
