import { Resolver as DnsResolver, lookup } from 'node:dns/promises';
import { isIP } from 'node:net';
import { ConfigError } from '../util/errors.js';

/** Teams Direct Routing §1.6: never pin Microsoft's addresses; re-resolve at least every 15 minutes. */
export const MAX_DNS_CACHE_MS = 15 * 60_000;

export interface ResolverOptions {
  /** Static name → IP overrides (tests, split-horizon DNS); they win over DNS. */
  hosts?: Record<string, string>;
  /**
   * DNS servers (`ip` or `ip:port`) to ask instead of the system resolver. Answers are cached for
   * their TTL, at most MAX_DNS_CACHE_MS.
   */
  servers?: string[];
  /** Clock (tests). */
  now?: () => number;
}

/**
 * Name → IP for the call-control app and the embedded SIP server. Without `servers`, the system
 * resolver is asked on every call (getaddrinfo: /etc/hosts, then the resolvers it is configured
 * with, and whatever cache the system keeps). With `servers`, A records (then AAAA) are asked of
 * those servers and kept for their TTL, capped at 15 minutes (§1.6), so a change Microsoft makes
 * in DNS is followed within the record's TTL.
 */
export class Resolver {
  readonly #hosts: ReadonlyMap<string, string>;
  readonly #dns: DnsResolver | undefined;
  readonly #now: () => number;
  readonly #cache = new Map<string, { address: string; until: number }>();

  constructor(o: ResolverOptions = {}) {
    this.#hosts = new Map(Object.entries(o.hosts ?? {}).map(([k, v]) => [k.toLowerCase(), v]));
    this.#now = o.now ?? Date.now;
    if (o.servers?.length) {
      this.#dns = new DnsResolver({ timeout: 2000, tries: 2 });
      try {
        this.#dns.setServers(o.servers);
      } catch (err) {
        throw new ConfigError(`teams.dnsServers: ${(err as Error).message} (${o.servers.join(', ')})`);
      }
    }
  }

  async resolve(host: string): Promise<string> {
    if (isIP(host)) return host;
    const name = host.toLowerCase();
    const o = this.#hosts.get(name);
    if (o) return o;
    if (!this.#dns) return (await lookup(host)).address;
    const hit = this.#cache.get(name);
    if (hit && hit.until > this.#now()) return hit.address;
    const records = await this.#dns.resolve4(name, { ttl: true }).catch(async (err: NodeJS.ErrnoException) => {
      if (err.code !== 'ENODATA' && err.code !== 'ENOTFOUND') throw err;
      return this.#dns!.resolve6(name, { ttl: true });
    });
    const first = records[0];
    if (!first) throw new Error(`${name}: no address`);
    this.#cache.set(name, { address: first.address, until: this.#now() + Math.min(first.ttl * 1000, MAX_DNS_CACHE_MS) });
    return first.address;
  }
}
