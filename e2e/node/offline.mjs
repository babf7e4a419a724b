// Preloaded (`node --import`) into the Node CLIs under test: a connection to anything but the
// loopback fails at once, as it would offline, before any DNS lookup, and its host and port are
// appended to the file named by E2E_REFUSED_LOG so that the test can say what the tool tried.
import net from 'node:net';
import { appendFileSync } from 'node:fs';

const loopback = /^(localhost|127(\.\d+){3}|::1)$/;
const connect = net.Socket.prototype.connect;

net.Socket.prototype.connect = function connectLoopbackOnly(...args) {
  // net.connect passes its normalized [options, callback]; a socket's own connect(options),
  // connect(port, host) or connect(path).
  let options = Array.isArray(args[0]) ? args[0][0] : args[0];
  if (typeof options !== 'object' || options === null) {
    options = typeof args[0] === 'string' && Number.isNaN(Number(args[0])) ? { path: args[0] } : { port: args[0], host: args[1] };
  }
  const host = options.host ?? 'localhost';
  if (options.path !== undefined || loopback.test(host)) return connect.apply(this, args);
  if (process.env.E2E_REFUSED_LOG) appendFileSync(process.env.E2E_REFUSED_LOG, `${host}:${options.port}\n`);
  const error = Object.assign(new Error(`connect ECONNREFUSED ${host}:${options.port} (offline test)`), {
    code: 'ECONNREFUSED', syscall: 'connect',
  });
  process.nextTick(() => this.destroy(error));
  return this;
};
