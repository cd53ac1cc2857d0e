// What every raw client shares: the pending-request bookkeeping (RawBase), the one
// keep-alive agent for POSTs, and the two ways a POST is answered (a plain body, or one
// JSON-RPC answer as JSON or as an event stream).
import http from 'node:http';
import { SseParser } from './sse.mjs';
import { PROTOCOL_VERSION } from './util.mjs';

/** One keep-alive agent for all POSTs of a run; event streams get their own sockets. */
export const postAgent = new http.Agent({ keepAlive: true, maxSockets: Infinity, maxFreeSockets: 1024 });

const INIT_PARAMS = { protocolVersion: PROTOCOL_VERSION, capabilities: {}, clientInfo: { name: 'bench-raw', version: '1.0.0' } };

export class RawBase {
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
export function postJson(url, headers, body, timeoutMs, method = 'POST') {
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

/**
 * POSTs one JSON-RPC message and hands every message of the answer to `onMessage`, whether
 * it came as one JSON body or as an event stream; resolves when the answer has ended,
 * rejects on a non-2xx status (with the start of the body). `onResponse(res)` sees the
 * response headers before any message is handed on.
 */
export function postMessage(url, headers, message, ms, { onResponse, onMessage, onBadJson }) {
  return new Promise((resolve, reject) => {
    const body = Buffer.from(JSON.stringify(message));
    const req = http.request(url, {
      method: 'POST',
      agent: postAgent,
      headers: { ...headers, 'content-type': 'application/json', 'content-length': body.length },
    });
    const timer = setTimeout(() => req.destroy(new Error(`POST ${url.pathname} timed out after ${ms} ms`)), ms);
    const done = (fn, v) => {
      clearTimeout(timer);
      fn(v);
    };
    const parse = (text) => {
      try {
        onMessage(JSON.parse(text));
      } catch {
        onBadJson();
      }
    };
    req.on('error', (e) => done(reject, e));
    req.on('response', (res) => {
      onResponse?.(res);
      res.setEncoding('utf8');
      const type = String(res.headers['content-type'] ?? '');
      if (res.statusCode < 200 || res.statusCode > 299) {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => done(reject, new Error(`POST ${url.pathname}: HTTP ${res.statusCode} ${text.slice(0, 200)}`)));
        return;
      }
      if (type.startsWith('text/event-stream')) {
        const parser = new SseParser((event, data) => {
          if (event === 'message') parse(data);
        });
        res.on('data', (c) => parser.push(c));
        res.on('end', () => done(resolve));
      } else {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          if (text.length > 0) parse(text);
          done(resolve);
        });
      }
      res.on('error', (e) => done(reject, e));
    });
    req.end(body);
  });
}
