import { BlockList, isIP } from 'node:net';
import { type SipRequest, parseUri } from '../sip/message/index.js';
import type { Flow } from '../sip/transport/types.js';

/** Addresses a peer behind NAT puts in its Contact (RFC 1918, RFC 6598 shared, RFC 4193, link-local). */
const PRIVATE = new BlockList();
PRIVATE.addSubnet('10.0.0.0', 8);
PRIVATE.addSubnet('172.16.0.0', 12);
PRIVATE.addSubnet('192.168.0.0', 16);
PRIVATE.addSubnet('100.64.0.0', 10);
PRIVATE.addSubnet('169.254.0.0', 16);
PRIVATE.addSubnet('fc00::', 7, 'ipv6');
PRIVATE.addSubnet('fe80::', 10, 'ipv6');

function isPrivate(host: string): boolean {
  const fam = isIP(host);
  return fam !== 0 && PRIVATE.check(host, fam === 6 ? 'ipv6' : 'ipv4');
}

/**
 * Whether our requests in a dialog a peer created over `flow` may ride that flow's connection
 * when the peer opened it.
 *
 * RFC 5923 §1/§5: a connection the peer opened is not reused for requests toward it unless the
 * peer asked (`alias` on its Via); RFC 5626 §5.3: `ob` on its Contact asks the same for the flow.
 * Teams Direct Routing §2.14 relies on it: its proxies' connections carry only their own
 * requests. Otherwise the request goes where RFC 3261 §12.2.1.1 sends it (route set, remote
 * target), reusing a connection already open to that address.
 *
 * One exception for peers behind NAT: a Contact holding a private address other than the one the
 * connection came from cannot be reached, so the connection is the only way back.
 */
export function peerAllowsReuse(req: SipRequest, flow: Flow): boolean {
  if (!flow.reliable || flow.direction !== 'inbound') return true;
  if (req.topVia.params.has('alias')) return true;
  let uri;
  try {
    const c = req.contacts[0];
    if (!c) return true;
    uri = parseUri(c.uri);
  } catch {
    return true; // no usable remote target: the connection is the only way back
  }
  if (uri.scheme === 'tel' || uri.params.has('ob')) return true;
  return isPrivate(uri.host) && uri.host !== flow.remoteAddress;
}
