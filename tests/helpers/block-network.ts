import net from 'node:net';

/**
 * No test may reach beyond this machine: outside services are replaced by local servers.
 * Any TCP connection to a non-loopback host fails at once, loudly.
 */
const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|::1|::ffff:127\.\d+\.\d+\.\d+)$/;

// eslint-disable-next-line @typescript-eslint/unbound-method -- re-applied below with the socket as `this`
const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function connect(this: net.Socket, ...args: unknown[]) {
  const [first] = args;
  const options = typeof first === 'object' && first !== null && !Array.isArray(first) ? (first as net.NetConnectOpts) : undefined;
  const host = options ? ('host' in options ? options.host : undefined) : typeof args[1] === 'string' ? args[1] : undefined;
  const isUnixSocket = options ? 'path' in options && Boolean(options.path) : typeof first === 'string' && !/^\d+$/.test(first);
  if (!isUnixSocket && host && !LOOPBACK.test(host)) {
    throw new Error(`test tried to connect to ${host}: outside network is blocked in tests`);
  }
  return Reflect.apply(originalConnect, this, args) as net.Socket;
};
