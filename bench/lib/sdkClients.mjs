// The official SDK client (@modelcontextprotocol/sdk 1.x; for 2026-07-28, the v2 client
// @modelcontextprotocol/client pinned to that revision) behind the same shape as the raw
// clients: open(), echo(text), close(), counters { strays, errors }.
import { Client as V2Client, StreamableHTTPClientTransport as V2StreamableTransport } from '@modelcontextprotocol/client';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { EVERYTHING, MODERN_PROTOCOL_VERSION, withTimeout } from './util.mjs';

export class SdkSession {
  /** kind: 'sse' | 'mcp' | 'modern' | 'stdio'. */
  constructor(kind, url, headers, timeoutMs) {
    this.kind = kind;
    this.url = url && new URL(url);
    this.headers = headers;
    this.timeoutMs = timeoutMs;
    this.strays = 0;
    this.errors = 0;
    this.closed = false;
  }

  async open() {
    const requestInit = { headers: this.headers };
    if (this.kind === 'sse') this.transport = new SSEClientTransport(this.url, { requestInit });
    else if (this.kind === 'mcp') this.transport = new StreamableHTTPClientTransport(this.url, { requestInit });
    else if (this.kind === 'modern') this.transport = new V2StreamableTransport(this.url, { requestInit });
    else this.transport = new StdioClientTransport({ command: process.execPath, args: [EVERYTHING, 'stdio'], stderr: 'ignore' });
    // Pinned, connect() is one server/discover; every call after it is stateless.
    this.client =
      this.kind === 'modern'
        ? new V2Client({ name: 'bench-sdk', version: '1.0.0' }, { versionNegotiation: { mode: { pin: MODERN_PROTOCOL_VERSION } } })
        : new Client({ name: 'bench-sdk', version: '1.0.0' });
    this.client.onerror = (error) => {
      // The SDK reports a reply it has no request for as an error: that is cross-talk.
      if (/unknown message ID/i.test(String(error?.message ?? error))) this.strays += 1;
      else this.errors += 1;
    };
    const openMs = Math.max(this.timeoutMs, 60_000);
    await withTimeout(this.client.connect(this.transport, { timeout: openMs }), openMs, `SDK ${this.kind} connect`);
  }

  /** pid of the stdio child (direct target only). */
  get pid() {
    return this.transport?.pid ?? undefined;
  }

  async echo(message) {
    const options = { timeout: this.timeoutMs };
    const result =
      this.kind === 'modern'
        ? await this.client.callTool({ name: 'echo', arguments: { message } }, options)
        : await this.client.callTool({ name: 'echo', arguments: { message } }, undefined, options);
    if (result.isError) throw new Error(`echo isError: ${JSON.stringify(result.content).slice(0, 300)}`);
    return result.content?.[0]?.text;
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    try {
      if (this.kind === 'mcp' && this.transport?.sessionId) {
        await withTimeout(this.transport.terminateSession(), 5000, 'terminateSession').catch(() => {});
      }
      await withTimeout(this.client?.close() ?? Promise.resolve(), 5000, 'SDK close').catch(() => {});
    } catch {
      /* closing is best effort; the target's stop() cleans up */
    }
  }
}
