import { isIP } from 'node:net';
import type { SipMessage } from '../message/message.js';
import type { Via } from '../message/via.js';

/** Strips the IPv4-mapped prefix a dual-stack socket reports (`::ffff:192.0.2.1` → `192.0.2.1`). */
export function normalizeIp(ip: string): string {
  // Fast path: an IPv4 address or a name (no brackets, no colon) only needs lower case.
  if (ip.indexOf(':') < 0 && ip.charCodeAt(0) !== 91) return ip.toLowerCase();
  const s = ip.startsWith('[') && ip.endsWith(']') ? ip.slice(1, -1) : ip;
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(s);
  return (m ? m[1]! : s).toLowerCase();
}

/**
 * RFC 3261 §18.2.1 and RFC 3581 §4, applied to every received request (top Via only).
 *
 * §18.2.1: "When the server transport receives a request over any transport, it MUST examine
 * the value of the 'sent-by' parameter in the top Via header field value. If the host portion
 * of the 'sent-by' parameter contains a domain name, or if it contains an IP address that
 * differs from the packet source address, the server MUST add a 'received' parameter to that
 * Via header field value."
 *
 * RFC 3581 §4: an "rport" parameter with no value MUST be set to the source port of the
 * request, and then "received" MUST be inserted "even if it is identical to the value of the
 * 'sent-by' component".
 *
 * Returns whether the message was changed. Throws SipError when the Via is malformed. The
 * message's other parsed headers stay cached (only the top Via is replaced).
 */
export function applyReceived(msg: SipMessage, srcIp: string, srcPort: number): boolean {
  if (!msg.has('via')) return false;
  const top = msg.topVia;
  const ip = normalizeIp(srcIp);
  const hasRport = top.params.has('rport');
  const setRport = hasRport && top.params.get('rport') === null;
  // `ip` is an address, so a sent-by written exactly as it is the same host.
  const sameHost = top.host === ip || (isIP(top.host) !== 0 && normalizeIp(top.host) === ip);
  const setReceived = (!sameHost || hasRport) && top.params.get('received') !== ip;
  if (!setRport && !setReceived) return false;
  const params = new Map(top.params);
  if (setRport) params.set('rport', String(srcPort));
  if (setReceived) params.set('received', ip);
  msg.setTopVia({ ...top, params });
  return true;
}

/** Default port of a transport when a Via/URI gives none (RFC 3261 §19.1.2). */
export function defaultPort(transport: string): number {
  return transport.toLowerCase() === 'tls' ? 5061 : 5060;
}

/**
 * RFC 3261 §18.2.2 + RFC 3581 §4, unreliable transports: where a response goes.
 * - maddr present: that address, port from sent-by or 5060;
 * - otherwise the `received` address (or the sent-by host) and the `rport` port if it has a
 *   value, else the sent-by port, else 5060.
 * A sent-by host that is a name (no `received`) cannot be resolved here: the packet source
 * from `fallbackIp` is used instead.
 */
export function responseTarget(via: Via, fallbackIp: string): { host: string; port: number } {
  const sentByPort = via.port ?? defaultPort(via.transport);
  const maddr = via.params.get('maddr');
  if (maddr && isIP(maddr)) return { host: maddr, port: sentByPort };
  const received = via.params.get('received');
  let host = received && isIP(received) ? received : via.host;
  if (!isIP(host)) host = fallbackIp;
  const rport = via.params.get('rport');
  const port = rport && /^\d{1,5}$/.test(rport) && Number(rport) > 0 && Number(rport) < 65536 ? Number(rport) : sentByPort;
  return { host, port };
}
