// Raw clients: speak each transport directly on node:http (keep-alive Agent) or on a
// child's stdio, with as little client-side work as possible, so the numbers show the
// gateway and not the client. All three share one shape:
//   open() -> initialize + notifications/initialized;  request(method, params) -> reply;
//   echo(text) -> the echoed text;  close();  counters { strays, errors }.
import http from 'node:http';
import { StringDecoder } from 'node:string_decoder';
import { SseParser } from './sse.mjs';
import { Service } from './procs.mjs';
import { EVERYTHING, PROTOCOL_VERSION, withTimeout } from './util.mjs';

/** One keep-alive agent for all POSTs of a run; event streams get their own sockets. */
export const postAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });

const INIT_PARAMS = { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'bench-raw', version: '1.0.0' } };

class RawBase {
  constructor(timeoutMs) {
    this.timeoutMs = timeoutMs;
    this.nextId = 1;
    this.pending = new Map();
    this.strays = 0;
    this.errors = 0;
    this.closed = false;
  }

  /** Registers a pending id; resolves with the JSON-RPC reply message. */
  expect(id) {
    // initialize (id 0) may wait for a cold spawn: give it at least 60 s
    const ms = id === 0 ? Math.max(this.timeoutMs, 60_000) : this.timeoutMs;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`request ${id} timed out after ${ms} ms`));
      }, ms);
      this.pending.set(id, { resolve, reject, timer });
    });
  }

  /** An incoming JSON-RPC message from the server. */
  deliver(msg) {
    if (Array.isArray(msg)) {
      for (const m of msg) this.deliver(m);
      return;
    }
    if (msg === null || typeof msg !== 'object') return;
    if ('method' in msg) return; // server notification or request: not ours to answer here
    const p = this.pending.get(msg.id);
    if (!p) {
      this.strays += 1; // a reply nobody here asked for: cross-talk or a duplicate
      return;
    }
    this.pending.delete(msg.id);
    clearTimeout(p.timer);
    p.resolve(msg);
  }

  failAll(error) {
    for (const [id, p] of this.pending) {
      clearTimeout(p.timer);
      p.reject(error);
      this.pending.delete(id);
    }
  }

  async echo(message) {
    const reply = await this.request('tools/call', { name: 'echo', arguments: { message } });
    if (reply.error) throw new Error(`echo error: ${JSON.stringify(reply.error).slice(0, 300)}`);
    return reply.result?.content?.[0]?.text;
  }

  async handshake() {
    const reply = await this.request('initialize', INIT_PARAMS, 0);
    if (reply.error) throw new Error(`initialize failed: ${JSON.stringify(reply.error).slice(0, 300)}`);
    await this.notify('notifications/initialized');
    return reply.result;
  }
}

/** Sends a body and collects the reply (status, headers, text); bounded by `timeoutMs`. */
function postJson(url, headers, body, timeoutMs, method = 'POST') {
  return new Promise((resolve, reject) => {
    const buf = body === undefined ? undefined : Buffer.from(body);
    const req = http.request(url, {
      method,
      agent: postAgent,
      headers: buf ? { ...headers, 'content-type': 'application/json', 'content-length': buf.length } : headers,
    });
    const timer = setTimeout(() => req.destroy(new Error(`${method} ${url.pathname} timed out after ${timeoutMs} ms`)), timeoutMs);
    req.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    req.on('response', (res) => {
      res.setEncoding('utf8');
      let text = '';
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode, headers: res.headers, text });
      });
      res.on('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    req.end(buf);
  });
}

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
    return new Promise((resolve, reject) => {
      const body = Buffer.from(JSON.stringify(message));
      const req = http.request(this.url, {
        method: 'POST',
        agent: postAgent,
        headers: { ...this.headers, 'content-type': 'application/json', 'content-length': body.length },
      });
      const ms = message.id === 0 ? Math.max(this.timeoutMs, 60_000) : this.timeoutMs;
      const timer = setTimeout(() => req.destroy(new Error(`POST ${this.url.pathname} timed out after ${ms} ms`)), ms);
      const done = (fn, v) => {
        clearTimeout(timer);
        fn(v);
      };
      req.on('error', (e) => done(reject, e));
      req.on('response', (res) => {
        const sid = res.headers['mcp-session-id'];
        if (sid && !this.sessionId) {
          this.sessionId = sid;
          this.headers = { ...this.baseHeaders, 'mcp-session-id': sid, 'mcp-protocol-version': PROTOCOL_VERSION };
        }
        res.setEncoding('utf8');
        const type = String(res.headers['content-type'] ?? '');
        if (res.statusCode < 200 || res.statusCode > 299) {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => done(reject, new Error(`POST ${this.url.pathname}: HTTP ${res.statusCode} ${text.slice(0, 200)}`)));
          return;
        }
        if (type.startsWith('text/event-stream')) {
          const parser = new SseParser((event, data) => {
            if (event !== 'message') return;
            try {
              this.deliver(JSON.parse(data));
            } catch {
              this.errors += 1;
            }
          });
          res.on('data', (c) => parser.push(c));
          res.on('end', () => done(resolve));
        } else {
          let text = '';
          res.on('data', (c) => (text += c));
          res.on('end', () => {
            if (text.length > 0) {
              try {
                this.deliver(JSON.parse(text));
              } catch {
                this.errors += 1;
              }
            }
            done(resolve);
          });
        }
        res.on('error', (e) => done(reject, e));
      });
      req.end(body);
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

/** Direct stdio: spawns the server itself and writes newline-delimited JSON. */
export class RawStdioSession extends RawBase {
  constructor(timeoutMs, argv = [process.execPath, EVERYTHING, 'stdio'], env = undefined) {
    super(timeoutMs);
    this.argv = argv;
    this.env = env;
  }

  async open() {
    this.service = new Service('direct-stdio', this.argv[0], this.argv.slice(1), { keepStdout: true, env: this.env });
    const decoder = new StringDecoder('utf8');
    let buf = '';
    this.service.child.stdout.on('data', (chunk) => {
      buf += decoder.write(chunk);
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        if (line.trim().length === 0) continue;
        try {
          this.deliver(JSON.parse(line));
        } catch {
          this.errors += 1;
        }
      }
    });
    this.service.exit.then(() => this.failAll(new Error('server exited')));
    return this.handshake();
  }

  write(message) {
    const stdin = this.service.child.stdin;
    if (stdin.write(`${JSON.stringify(message)}\n`)) return Promise.resolve();
    return withTimeout(
      new Promise((resolve) => {
        stdin.once('drain', resolve);
        stdin.once('close', resolve);
      }),
      this.timeoutMs,
      'stdin drain',
    );
  }

  request(method, params, id = this.nextId++) {
    const reply = this.expect(id);
    this.write({ jsonrpc: '2.0', id, method, params }).catch((e) => this.failAll(e));
    return reply;
  }

  notify(method, params) {
    return this.write(params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params });
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    this.failAll(new Error('session closed'));
    if (this.service) {
      this.service.child.stdin.end();
      await this.service.stop(3000);
    }
  }
}
