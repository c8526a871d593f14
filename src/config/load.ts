import { readFileSync } from 'node:fs';
import { Ajv } from 'ajv';
import { parse as parseYaml } from 'yaml';
import { ConfigError } from '../util/errors.js';
import { type Config, TEAMS_CLOUDS, configSchema } from './schema.js';

export { ConfigError };

/** Environment overlay: variable → config path. Only these are read; nothing else is. */
export const ENV_OVERLAY: Readonly<Record<string, string>> = {
  TEAMS_GW_LOG_LEVEL: 'log.level',
  TEAMS_GW_SIP_MODE: 'sipServer.mode',
  TEAMS_GW_SIP_CONTACTS: 'sipServer.contacts',
  TEAMS_GW_EXTERNAL_IP: 'sipServer.externalIp',
  TEAMS_GW_DRACHTIO_HOST: 'sipServer.admin.host',
  TEAMS_GW_DRACHTIO_PORT: 'sipServer.admin.port',
  DRACHTIO_SECRET: 'sipServer.admin.secret',
  TEAMS_GW_TEAMS_CLOUD: 'teams.cloud',
  TEAMS_GW_OPS_TOKEN: 'ops.adminToken',
};

/**
 * Settings that moved out of the gateway config: a file that still sets one is refused with this
 * message (instead of a bare "unknown setting"), so the operator knows where it went.
 */
export const MOVED_SETTINGS: Readonly<Record<string, string>> = {
  'calls.ringGroups':
    'ring groups moved to the tenant config: define them per DID under tenants[].ringGroups in the tenant\'s file (config/tenants/*.yaml, see docs/tenants.md "Ring groups") and remove calls.ringGroups here',
};

function setPath(obj: Record<string, any>, path: string, value: unknown): void {
  const parts = path.split('.');
  let o = obj;
  for (const p of parts.slice(0, -1)) o = (o[p] ??= {});
  o[parts.at(-1)!] = value;
}

function deepFreeze<T>(o: T): T {
  if (o && typeof o === 'object') {
    for (const v of Object.values(o)) deepFreeze(v);
    Object.freeze(o);
  }
  return o;
}

/**
 * Defaults ← config file (YAML or JSON) ← environment overlay, validated against the schema and
 * frozen. Errors name the file (or variable) and the field.
 */
export function loadConfig(file?: string, env: NodeJS.ProcessEnv = process.env): Config {
  let raw: Record<string, any> = {};
  if (file) {
    let text: string;
    try {
      text = readFileSync(file, 'utf8');
    } catch (err) {
      throw new ConfigError(`${file}: cannot read (${(err as Error).message})`);
    }
    try {
      raw = (parseYaml(text) as Record<string, any>) ?? {};
    } catch (err) {
      throw new ConfigError(`${file}: invalid YAML/JSON (${(err as Error).message.split('\n')[0]})`);
    }
    if (typeof raw !== 'object' || Array.isArray(raw)) throw new ConfigError(`${file}: top level must be a mapping`);
  }
  for (const [name, path] of Object.entries(ENV_OVERLAY)) {
    const v = env[name];
    if (v === undefined || v === '') continue;
    const value = path.endsWith('.port') ? Number(v) : path.endsWith('contacts') ? v.split(/\s+|,(?=sips?:)/).filter(Boolean) : v;
    setPath(raw, path, value);
  }
  const ajv = new Ajv({ useDefaults: true, allErrors: true, strict: false });
  const validate = ajv.compile(configSchema);
  const where = file ?? 'environment';
  if (!validate(raw)) {
    const msgs = (validate.errors ?? []).map((e) => {
      const path = e.instancePath.replace(/^\//, '').replace(/\//g, '.');
      if (e.keyword === 'additionalProperties') {
        const key = `${path ? `${path}.` : ''}${String(e.params.additionalProperty)}`;
        return `${where}: ${key}: ${MOVED_SETTINGS[key] ?? 'unknown setting'}`;
      }
      return `${where}: ${path || '(root)'} ${e.message}`;
    });
    throw new ConfigError(msgs.join('\n'));
  }
  const tls = (raw as Config).sipServer.tls;
  if (tls.verifyClients && (!tls.verifyPeer || !tls.caFile)) {
    throw new ConfigError(`${where}: sipServer.tls.verifyClients needs sipServer.tls.verifyPeer: true and a sipServer.tls.caFile to verify client certificates against`);
  }
  applyTeamsCloud((raw as Config).teams, where);
  return deepFreeze(raw as Config);
}

/**
 * teams-direct-routing §1.2: fills `teams.proxies` / `teams.sourceCidrs` from the cloud's preset
 * when the file leaves them out, and refuses what cannot work in that cloud: a proxy of another
 * Microsoft cloud (a config copied from a commercial deployment), or a government cloud with a
 * signalling port other than 5061.
 */
function applyTeamsCloud(teams: Config['teams'], where: string): void {
  const cloud = TEAMS_CLOUDS[teams.cloud];
  teams.proxies ??= cloud.proxies.map((host) => ({ host, port: 5061 }));
  teams.sourceCidrs ??= [...cloud.sourceCidrs];
  const under = (host: string, domain: string) => host.toLowerCase().endsWith(`.${domain}`);
  for (const [i, p] of teams.proxies.entries()) {
    const other = Object.entries(TEAMS_CLOUDS).find(([name, c]) => name !== teams.cloud && under(p.host, c.domain) && !under(p.host, cloud.domain));
    if (other) {
      throw new ConfigError(`${where}: teams.proxies.${i}.host: ${p.host} is a ${other[0]} cloud proxy but teams.cloud is ${teams.cloud}; remove teams.proxies to use the ${teams.cloud} proxies, or set teams.cloud`);
    }
  }
  if (cloud.fixedSignalingPort && teams.signalingPort !== 5061) {
    throw new ConfigError(`${where}: teams.signalingPort must be 5061 when teams.cloud is ${teams.cloud} (Teams in that cloud only connects to port 5061)`);
  }
}

/** The defaults alone (what config/default.json must equal). */
export function defaultConfig(): Config {
  return loadConfig(undefined, {});
}
