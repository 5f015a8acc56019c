import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';

/**
 * An agent for SDKs whose base URL is fixed (firebase-admin's FCM, PayPal's per environment):
 * every connection goes to `target` instead (plain TCP for http:, TLS with that host's name for
 * https:), while the SDK's own URLs, paths and Host header go out unchanged. A proxy option would
 * CONNECT-tunnel instead.
 */
export class RerouteAgent extends https.Agent {
  private readonly host: string;
  private readonly port: number;
  private readonly plain: boolean;

  constructor(target: URL) {
    super({ keepAlive: true });
    this.plain = target.protocol === 'http:';
    this.host = target.hostname.replace(/^\[(.*)\]$/, '$1');
    this.port = Number(target.port) || (this.plain ? 80 : 443);
  }

  override createConnection(options: https.RequestOptions, callback?: (error: Error | null, stream: Duplex) => void): Duplex | null | undefined {
    if (this.plain) return net.connect({ host: this.host, port: this.port });
    return super.createConnection({ ...options, host: this.host, port: this.port, servername: net.isIP(this.host) ? '' : this.host }, callback);
  }
}
