#!/usr/bin/env node
// The least a Node gateway can do, as a reference for what HTTP itself costs on this
// machine: node:http, one child per session, lines relayed as they are. No auth, no
// validation, no policy, no limits, no logging, no process hygiene beyond kill on close.
// NOT a product: it exists so the report can say how close mcp-warden gets to "nothing but
// the relay" and whether a target is reachable here at all.
//   node bench/servers/bareRelay.mjs --port 0 -- <command> [args...]
// SSE: GET /sse -> `endpoint` event; POST /messages?sessionId= -> 202, replies as events.
// Streamable HTTP: POST /mcp (initialize starts a session, Mcp-Session-Id); a POST with a
// request is answered with the reply as one JSON body; notifications get 202; DELETE ends.
import http from 'node:http';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';

const argv = process.argv.slice(2);
const sep = argv.indexOf('--');
const port = Number(argv[argv.indexOf('--port') + 1] ?? 0);
const [command, ...args] = argv.slice(sep + 1);

/** A child whose stdout lines go to `onLine`. */
function startChild(onLine) {
  const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'ignore'] });
  let rest = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    rest += chunk;
    let nl;
    while ((nl = rest.indexOf('\n')) !== -1) {
      const line = rest.slice(0, nl);
      rest = rest.slice(nl + 1);
      if (line) onLine(line);
    }
  });
  child.stdin.on('error', () => {});
  return child;
}

const sse = new Map();
const streamable = new Map();

function readBody(req) {
  return new Promise((resolve) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

const server = http.createServer(async (req, res) => {
  const url = new URL(req.url, 'http://x');
  if (req.method === 'GET' && url.pathname === '/sse') {
    const id = randomUUID();
    res.writeHead(200, { 'Content-Type': 'text/event-stream', 'Cache-Control': 'no-cache' });
    const child = startChild((line) => res.write(`event: message\ndata: ${line}\n\n`));
    sse.set(id, child);
    res.write(`event: endpoint\ndata: /messages?sessionId=${id}\n\n`);
    res.on('close', () => {
      sse.delete(id);
      child.kill('SIGKILL');
    });
    return;
  }
  if (req.method === 'POST' && url.pathname === '/messages') {
    const child = sse.get(url.searchParams.get('sessionId'));
    const body = await readBody(req);
    if (!child) return res.writeHead(404).end();
    child.stdin.write(body + '\n');
    return res.writeHead(202).end('Accepted');
  }
  if (url.pathname === '/mcp') {
    let id = req.headers['mcp-session-id'];
    if (req.method === 'DELETE') {
      streamable.get(id)?.child.kill('SIGKILL');
      streamable.delete(id);
      return res.writeHead(200).end();
    }
    if (req.method !== 'POST') return res.writeHead(405).end();
    const body = await readBody(req);
    const message = JSON.parse(body);
    let session = streamable.get(id);
    if (!session && message.method === 'initialize') {
      id = randomUUID();
      const waiting = new Map();
      const child = startChild((line) => {
        const reply = JSON.parse(line);
        const r = waiting.get(reply.id);
        if (r) {
          waiting.delete(reply.id);
          r.writeHead(200, { 'Content-Type': 'application/json', 'mcp-session-id': id }).end(line);
        }
      });
      session = { child, waiting };
      streamable.set(id, session);
    }
    if (!session) return res.writeHead(404).end();
    if (message.id === undefined) {
      session.child.stdin.write(body + '\n');
      return res.writeHead(202).end();
    }
    session.waiting.set(message.id, res);
    session.child.stdin.write(body + '\n');
    return;
  }
  res.writeHead(404).end();
});
server.keepAliveTimeout = 65_000;
server.listen(port, '127.0.0.1');
const stop = () => {
  for (const child of sse.values()) child.kill('SIGKILL');
  for (const s of streamable.values()) s.child.kill('SIGKILL');
  process.exit(0);
};
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
