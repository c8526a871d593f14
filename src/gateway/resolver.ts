import { lookup } from 'node:dns/promises';
import { isIP } from 'node:net';

/** Name → IP with a static override table (tests, split-horizon DNS), else the system resolver. */
export class Resolver {
  readonly #hosts: ReadonlyMap<string, string>;
  constructor(hosts: Record<string, string> = {}) {
    this.#hosts = new Map(Object.entries(hosts).map(([k, v]) => [k.toLowerCase(), v]));
  }

  async resolve(host: string): Promise<string> {
    if (isIP(host)) return host;
    const o = this.#hosts.get(host.toLowerCase());
    if (o) return o;
    return (await lookup(host)).address;
  }
}
