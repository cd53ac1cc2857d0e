// Direct stdio, the floor every gateway is compared with: the raw client on a child's
// stdin and stdout.
import { StringDecoder } from 'node:string_decoder';
import { RawBase } from './rawBase.mjs';
import { Service } from './procs.mjs';
import { EVERYTHING, withTimeout } from './util.mjs';

/** Direct stdio: spawns the server itself and writes newline-delimited JSON. */
export class RawStdioSession extends RawBase {
  constructor(timeoutMs, argv = [process.execPath, EVERYTHING, 'stdio'], env = undefined) {
    super(timeoutMs);
    this.argv = argv;
    this.env = env;
  }

  async open() {
    this.start();
    return this.handshake();
  }

  /** Spawns the server and reads its stdout; no handshake (open() does both). */
  start() {
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
