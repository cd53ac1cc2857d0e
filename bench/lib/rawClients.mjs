// Raw clients: speak each transport directly on node:http (keep-alive Agent) or on a
// child's stdio (rawStdio.mjs), with as little client-side work as possible, so the numbers
// show the gateway and not the client. All of them share one shape (rawBase.mjs):
//   open() -> initialize + notifications/initialized (2026-07-28: nothing);  request(method, params) -> reply;
//   echo(text) -> the echoed text;  close();  counters { strays, errors }.
import http from 'node:http';
import { SseParser } from './sse.mjs';
import { RawBase, postJson, postMessage } from './rawBase.mjs';
import { MODERN_PROTOCOL_VERSION, PROTOCOL_VERSION, withTimeout } from './util.mjs';

export { postAgent } from './rawBase.mjs';
export { RawStdioSession } from './rawStdio.mjs';

/** What every 2026-07-28 request carries in `params._meta`. */
const MODERN_ENVELOPE = Object.freeze({ 'io.modelcontextprotocol/protocolVersion': MODERN_PROTOCOL_VERSION, 'io.modelcontextprotocol/clientCapabilities': {} });
/** The parameter a 2026-07-28 request's `Mcp-Name` header repeats. */
const NAMED_BY = Object.freeze({ 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri' });

/** Legacy HTTP+SSE: one GET event stream, replies arrive on it; POSTs get 202. */
export class RawSseSession extends RawBase {
  constructor(sseUrl, headers, timeoutMs) {
    super(timeoutMs);
    this.sseUrl = new URL(sseUrl);
    this.headers = headers;
  }

  async open() {
    const endpoint = await withTimeout(
      new Promise((resolve, reject) => {
        const req = http.request(this.sseUrl, { method: 'GET', agent: false, headers: { ...this.headers, accept: 'text/event-stream' } });
        this.streamReq = req;
        req.on('error', (e) => {
          reject(e);
          this.failAll(e);
        });
        req.on('response', (res) => {
          if (res.statusCode !== 200) {
            res.resume();
            reject(new Error(`GET ${this.sseUrl.pathname}: HTTP ${res.statusCode}`));
            return;
          }
          res.setEncoding('utf8');
          const parser = new SseParser((event, data) => {
            if (event === 'endpoint') resolve(new URL(data, this.sseUrl));
            else if (event === 'message') {
              try {
                this.deliver(JSON.parse(data));
              } catch {
                this.errors += 1;
              }
            }
          });
          res.on('data', (c) => parser.push(c));
          res.on('error', () => {});
          res.on('close', () => {
            if (!this.closed) this.failAll(new Error('event stream closed'));
          });
        });
        req.end();
      }),
      this.timeoutMs,
      `SSE endpoint event from ${this.sseUrl.pathname}`,
    );
    this.postUrl = endpoint;
    return this.handshake();
  }

  async send(message) {
    const res = await postJson(this.postUrl, this.headers, JSON.stringify(message), this.timeoutMs);
    if (res.status < 200 || res.status > 299) throw new Error(`POST ${this.postUrl.pathname}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
  }

  request(method, params, id = this.nextId++) {
    const reply = this.expect(id);
    this.send({ jsonrpc: '2.0', id, method, params }).catch((e) => {
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.reject(e);
      }
    });
    return reply;
  }

  notify(method, params) {
    return this.send(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params });
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error('session closed'));
    this.streamReq?.destroy();
  }
}

/** Streamable HTTP: every request is a POST whose reply is JSON or a short SSE stream. */
export class RawStreamableSession extends RawBase {
  constructor(mcpUrl, headers, timeoutMs) {
    super(timeoutMs);
    this.url = new URL(mcpUrl);
    this.baseHeaders = { ...headers, accept: 'application/json, text/event-stream' };
    this.headers = this.baseHeaders;
  }

  async open() {
    return this.handshake();
  }

  /** POSTs one message; replies (JSON or SSE) go through deliver(). */
  post(message) {
    const ms = message.id === 0 ? Math.max(this.timeoutMs, 60_000) : this.timeoutMs;
    return postMessage(this.url, this.headers, message, ms, {
      onResponse: (res) => {
        const sid = res.headers['mcp-session-id'];
        if (sid && !this.sessionId) {
          this.sessionId = sid;
          this.headers = { ...this.baseHeaders, 'mcp-session-id': sid, 'mcp-protocol-version': PROTOCOL_VERSION };
        }
      },
      onMessage: (msg) => this.deliver(msg),
      onBadJson: () => (this.errors += 1),
    });
  }

  request(method, params, id = this.nextId++) {
    const reply = this.expect(id);
    this.post({ jsonrpc: '2.0', id, method, params }).catch((e) => {
      const p = this.pending.get(id);
      if (p) {
        this.pending.delete(id);
        clearTimeout(p.timer);
        p.reject(e);
      }
    });
    return reply;
  }

  notify(method, params) {
    return this.post(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params });
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error('session closed'));
    if (this.sessionId) {
      await postJson(this.url, this.headers, undefined, 5000, 'DELETE').catch(() => {});
    }
  }
}

/**
 * MCP 2026-07-28 ("modern"): no session and no handshake. Every request is one POST that
 * carries its own envelope (`params._meta`: protocol version, client capabilities) and the
 * routing headers (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`); its answer (JSON, or
 * an event stream that ends with the reply) must carry the id that POST sent, or it counts
 * as a stray. open() only remembers the headers.
 */
export class RawModernSession extends RawBase {
  constructor(mcpUrl, headers, timeoutMs) {
    super(timeoutMs);
    this.url = new URL(mcpUrl);
    this.headers = { ...headers, accept: 'application/json, text/event-stream', 'mcp-protocol-version': MODERN_PROTOCOL_VERSION };
  }

  async open() {
    return {};
  }

  async request(method, params = {}, id = this.nextId++) {
    const headers = { ...this.headers, 'mcp-method': method };
    const name = NAMED_BY[method];
    if (name) headers['mcp-name'] = String(params[name]);
    const message = { jsonrpc: '2.0', id, method, params: { ...params, _meta: { ...params._meta, ...MODERN_ENVELOPE } } };
    let reply;
    await postMessage(this.url, headers, message, this.timeoutMs, {
      onMessage: (msg) => {
        if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) this.errors += 1;
        else if ('method' in msg)
          return; // progress or a log line on this request's stream
        else if (reply !== undefined || msg.id !== id)
          this.strays += 1; // another request's reply, or a second one
        else reply = msg;
      },
      onBadJson: () => (this.errors += 1),
    });
    if (reply === undefined) throw new Error(`${method}: the answer to POST ${this.url.pathname} ended without the reply to id ${id}`);
    return reply;
  }

  async notify() {
    throw new Error('the modern client sends requests only');
  }

  async close() {
    this.closed = true; // nothing to end: the conversation belongs to the principal, not to this client
  }
}
