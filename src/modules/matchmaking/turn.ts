import { createHmac } from 'node:crypto';

export interface IceServer {
  urls: string[];
  username?: string;
  credential?: string;
}

export interface TurnSettings {
  host?: string | undefined;
  port: number;
  secret: string;
  ttlSeconds: number;
}

/**
 * ICE servers for one user, with TURN REST credentials as Coturn's use-auth-secret expects:
 * username = "<expiry unix time>:<userId>", password = base64(HMAC-SHA1(secret, username)).
 */
export function iceServersFor(userId: string, now: Date, settings: TurnSettings): IceServer[] {
  if (!settings.host) return [];
  const username = `${Math.floor(now.getTime() / 1000) + settings.ttlSeconds}:${userId}`;
  const credential = createHmac('sha1', settings.secret).update(username).digest('base64');
  const address = `${settings.host}:${settings.port}`;
  return [{ urls: [`stun:${address}`] }, { urls: [`turn:${address}?transport=udp`, `turn:${address}?transport=tcp`], username, credential }];
}
