// Preloaded into the peer gateways (`node --import bench/servers/loopback.mjs ...`).
// supergateway has no host flag and listens on every interface; this forces every TCP
// listen in the process onto 127.0.0.1 and reports the port it got on stderr as
// `BENCH_LISTENING <port>`, so the bench can pass --port 0 and never race for a port.
// It changes nothing else: no request path is touched.
import net from 'node:net';

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function benchLoopbackListen(...args) {
  const callback = typeof args[args.length - 1] === 'function' ? args.pop() : undefined;
  const first = args[0];
  let options;
  if (first !== null && typeof first === 'object' && !(first instanceof net.Server)) options = { ...first };
  else if (typeof first === 'string' && !/^\d+$/.test(first)) options = { path: first };
  else options = { port: first === undefined ? 0 : Number(first) };
  if (options.path === undefined) {
    options.host = '127.0.0.1';
    delete options.ipv6Only;
    this.once('listening', () => {
      const address = this.address();
      if (address && typeof address === 'object') process.stderr.write(`BENCH_LISTENING ${address.port}\n`);
    });
  }
  return callback ? listen.call(this, options, callback) : listen.call(this, options);
};
