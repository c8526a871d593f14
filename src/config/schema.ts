import type { GatewayFeatures } from '../gateway/features.js';

/**
 * THE configuration schema of the gateway process: every key, its type and its default, in one
 * place. `config/default.json` mirrors these defaults (a unit test keeps them equal) and
 * docs/configuration.md documents them.
 */
export const configSchema = {
  $id: 'https://teams-dr-gateway/config.schema.json',
  type: 'object',
  additionalProperties: false,
  default: {},
  properties: {
    log: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'], default: 'info' },
      },
    },
    sipServer: {
      description: 'The SIP server call control runs on: our embedded drachtio-compatible server, or an external drachtio-server.',
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        mode: { enum: ['embedded', 'external'], default: 'embedded' },
        contacts: {
          description: 'Embedded mode: SIP listen contacts in drachtio syntax.',
          type: 'array',
          items: { type: 'string', minLength: 5 },
          minItems: 1,
          default: ['sip:127.0.0.1:5060;transport=udp,tcp'],
        },
        externalIp: { type: 'string', default: '' },
        tls: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            keyFile: { type: 'string', default: '' },
            certFile: { type: 'string', default: '' },
            chainFile: { type: 'string', default: '' },
            caFile: { type: 'string', default: '' },
            verifyPeer: { type: 'boolean', default: false },
            verifyClients: {
              description: 'Inbound TLS: ask every client for a certificate and refuse the connection unless it verifies against caFile (teams-direct-routing §2.11: Teams presents one on every connection it opens). Carriers using TLS on the same listen point must present one too. Needs verifyPeer and caFile.',
              type: 'boolean',
              default: false,
            },
            watchIntervalSec: {
              description: 'Embedded mode: re-read keyFile, certFile, chainFile and caFile this often and take them over when their content changed and checks out (teams-direct-routing §2.12: a renewed certificate without a restart; every TLS connection is then rebuilt). SIGHUP and POST /tls/reload do the same at once. 0: no polling.',
              type: 'number',
              minimum: 0,
              default: 60,
            },
            reloadGraceSec: {
              description: 'After a certificate reload, how long a TLS connection that carried the old certificate still serves what is bound to it (responses, an INVITE still ringing) before it is closed.',
              type: 'number',
              minimum: 0,
              default: 600,
            },
          },
        },
        admin: {
          description: 'Wire-protocol endpoint: where the embedded server listens, or the external drachtio-server to connect to.',
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            host: { type: 'string', default: '127.0.0.1' },
            port: { type: 'integer', minimum: 0, maximum: 65535, default: 9022 },
            secret: { type: 'string', default: '', description: 'Empty: a random secret per start (embedded only). Prefer $DRACHTIO_SECRET.' },
          },
        },
        cdrs: { type: 'boolean', default: false },
        prometheusScrapePort: { type: 'string', default: '' },
        dropConnectionOnRetryAfter: {
          description: 'Embedded mode: a TLS/TCP connection we opened whose peer answers 503 with Retry-After is taken out of reuse and closed (Teams failover rule); the next request opens a new one.',
          type: 'boolean',
          default: true,
        },
      },
    },
    teams: {
      description: 'Microsoft Teams Direct Routing side.',
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        cloud: {
          description: 'Which Microsoft cloud the tenants live in (teams-direct-routing §1.2): chooses the default proxies and sourceCidrs (TEAMS_CLOUDS). gcch and dod have one proxy each and need signalingPort 5061.',
          enum: ['commercial', 'gcch', 'dod'],
          default: 'commercial',
        },
        proxies: {
          description: 'Teams SIP proxies in failover order. Default: the cloud\'s (TEAMS_CLOUDS); a list naming another cloud\'s proxies is refused.',
          type: 'array',
          minItems: 1,
          items: {
            type: 'object',
            additionalProperties: false,
            required: ['host'],
            properties: { host: { type: 'string', minLength: 1 }, port: { type: 'integer', minimum: 1, maximum: 65535, default: 5061 } },
          },
        },
        hosts: {
          description: 'Resolver override: host name → IP address (tests, split-horizon DNS).',
          type: 'object',
          additionalProperties: { type: 'string' },
          default: {},
        },
        dnsServers: {
          description:
            'DNS servers (ip or ip:port) for the names the gateway resolves (Teams proxies, their Contact FQDNs, carrier targets). Answers are kept for their TTL, at most 15 minutes (teams-direct-routing §1.6). Empty: the system resolver on every attempt.',
          type: 'array',
          items: { type: 'string' },
          default: [],
        },
        signalingPort: { description: 'The SBC TLS port Teams sees (in Contact).', type: 'integer', minimum: 1, maximum: 65535, default: 5061 },
        sbcHeader: { description: 'X-MS-SBC value (Vendor/Product/Version).', type: 'string', default: 'TeamsDrGateway/teams-dr-gateway/0.1.0' },
        sourceCidrs: {
          description: 'Addresses Teams calls may come from (over TLS only). Default: the cloud\'s (TEAMS_CLOUDS).',
          type: 'array',
          items: { type: 'string' },
        },
        nextHop: { description: 'Optional upstream certified SBC: every Teams-bound request goes there (sip:host:port;transport=tls); it owns the sip/sip2/sip3 failover, so a call makes one attempt.', type: 'string', default: '' },
        inviteTimeoutMs: { description: 'No provisional from a Teams proxy within this time: try the next one.', type: 'integer', minimum: 100, default: 4000 },
      },
    },
    carriers: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        unknownSource: { description: 'INVITE or OPTIONS from an address that is neither a carrier\'s nor Teams\': reject with 403, or drop silently (scanners).', enum: ['reject', 'drop'], default: 'reject' },
        earlyMedia: { description: '183 with SDP from Teams toward carriers: pass, or convert to 180 without SDP.', enum: ['pass', 'convert-to-180'], default: 'pass' },
        reliableProvisionals: {
          description: 'RFC 3262 toward carriers: supported = Supported: 100rel in INVITEs to carriers and reliable 183s with SDP to carriers that support it; off = neither (Require: 100rel is always honoured).',
          enum: ['supported', 'off'],
          default: 'supported',
        },
        setupBudgetMs: {
          description:
            'Teams → PSTN: the carrier targets are hunted for at most this long without a provisional; then Teams gets 408 and re-routes to another SBC before its own FailoverTimeSeconds (10 s, teams-direct-routing §1.12) drops the call. 0: no limit (each target still has teams.inviteTimeoutMs).',
          type: 'integer',
          minimum: 0,
          default: 9000,
        },
      },
    },
    media: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        rtpengines: { description: 'rtpengine ng control addresses (host:port).', type: 'array', items: { type: 'string' }, default: ['127.0.0.1:22222'] },
        commandTimeoutMs: { description: 'rtpengine ng command timeout.', type: 'integer', minimum: 50, default: 1000 },
        healthIntervalMs: { description: 'rtpengine ping interval.', type: 'integer', minimum: 100, default: 5000 },
        failuresBeforeDown: { description: 'Failed pings before an rtpengine is marked down.', type: 'integer', minimum: 1, default: 2 },
        profiles: {
          description: 'rtpengine flag profiles per leg (carrier, teams, common): data, merged over the built-in defaults (src/media/profiles.ts).',
          type: 'object',
          default: {},
        },
      },
    },
    calls: {
      description: 'Mid-call behaviour and transfers (src/gateway/features.ts). Ring groups live in the tenant config (docs/tenants.md).',
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        sessionTimer: {
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            sessionExpires: { description: 'Session-Expires we ask for in INVITEs to Teams (RFC 4028).', type: 'integer', minimum: 90, default: 1800 },
            minSeconds: { description: 'Smallest session interval accepted (Min-SE); lower requests get 422.', type: 'integer', minimum: 1, default: 90 },
            refresherForTeamsCalls: { description: 'Calls from Teams: who refreshes (uac = Teams, uas = the gateway).', enum: ['uac', 'uas'], default: 'uac' },
          },
        },
        carrierSessionTimer: {
          description:
            'RFC 4028 session timer on the carrier leg, independent of the Teams leg: a carrier that stops refreshing (or stops answering our refreshes) has its call ended on both legs.',
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { description: 'Off: no Session-Expires toward carriers and no timer on their leg.', type: 'boolean', default: true },
            sessionExpires: { description: 'Session-Expires offered to carriers (INVITEs to them) and the most granted to them (their INVITEs).', type: 'integer', minimum: 90, default: 1800 },
            minSeconds: { description: 'Our Min-SE toward carriers: a carrier asking for less (with Supported: timer) gets 422.', type: 'integer', minimum: 90, default: 90 },
            perCarrier: {
              description: 'Per carrier name: enabled / sessionExpires / minSeconds overriding the values above.',
              type: 'object',
              default: {},
              additionalProperties: {
                type: 'object',
                additionalProperties: false,
                properties: {
                  enabled: { type: 'boolean' },
                  sessionExpires: { type: 'integer', minimum: 90 },
                  minSeconds: { type: 'integer', minimum: 90 },
                },
              },
            },
          },
        },
        info: { description: 'SIP INFO: pass to the other leg, or answer 200 locally.', enum: ['pass', 'local'], default: 'pass' },
        carrierEarlyMedia: {
          description: 'Per carrier name: 183 with SDP toward that carrier (overrides carriers.earlyMedia).',
          type: 'object',
          additionalProperties: { enum: ['pass', 'convert-to-180'] },
          default: {},
        },
        carrierReliableProvisionals: {
          description: 'Per carrier name: supported / off (overrides carriers.reliableProvisionals).',
          type: 'object',
          additionalProperties: { enum: ['supported', 'off'] },
          default: {},
        },
        transferRingback: {
          description:
            'Ringing tone the gateway plays to the PSTN party (rtpengine play media) while a transfer target rings with 180 and no SDP (teams-direct-routing.md §6.6), and to a late-offer carrier that requires 100rel while Teams rings without SDP. Early media of a 183/180 with SDP is passed instead.',
          type: 'object',
          additionalProperties: false,
          default: {},
          properties: {
            enabled: { type: 'boolean', default: true },
            country: {
              description: 'Tone plan: us = 440+480 Hz 2 s on/4 s off; uk = 400+450 Hz 0.4/0.2/0.4/2.0 s; eu = 425 Hz 1 s on/4 s off (CEPT/ETSI).',
              enum: ['us', 'uk', 'eu'],
              default: 'us',
            },
            file: {
              description: 'Empty: the generated tone is sent inline (ng `blob`). A path: a media file ON THE RTPENGINE HOST played instead (ng `file`).',
              type: 'string',
              default: '',
            },
            maxSeconds: { description: 'Upper bound of one ringback (rtpengine stops by itself after about this long).', type: 'integer', minimum: 10, maximum: 3600, default: 180 },
          },
        },
      },
    },
    ops: {
      description: 'Operations: HTTP endpoint (/metrics, /health, /ready, /status, /check), OPTIONS health checks, CDRs.',
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        httpHost: { type: 'string', default: '127.0.0.1' },
        httpPort: { type: 'integer', minimum: 0, maximum: 65535, default: 9090 },
        adminToken: {
          description:
            'Bearer token the ops endpoint requires for requests that change something (POST /drain, /resume, /tls/reload, PUT /loglevel); reads (/metrics, /ready, /status, /check) stay open. Empty: none, so keep httpHost on a trusted network. Prefer $TEAMS_GW_OPS_TOKEN.',
          type: 'string',
          default: '',
        },
        optionsIntervalSec: { description: 'OPTIONS to each Teams proxy every N seconds (Teams expects 60).', type: 'number', exclusiveMinimum: 0, default: 60 },
        optionsFailuresBeforeDown: { type: 'integer', minimum: 1, default: 2 },
        optionsTimeoutMs: { type: 'integer', minimum: 100, default: 5000 },
        optionsPerTenant: { description: 'Also send OPTIONS with each tenant FQDN as Contact (besides the carrier trunk FQDN).', type: 'boolean', default: false },
        carrierOptionsIntervalSec: { description: 'OPTIONS to carrier targets every N seconds; 0 = off. Failed targets are skipped in routing.', type: 'number', minimum: 0, default: 0 },
        cdrStream: { description: 'Redis stream for CDRs (when Redis is configured).', type: 'string', default: 'tg:cdrs' },
        cdrStreamMaxLen: { type: 'integer', minimum: 1, default: 100000 },
        dnsServers: { description: 'DNS servers for `teams-gw check` (empty: system resolver).', type: 'array', items: { type: 'string' }, default: [] },
      },
    },
    shutdown: {
      type: 'object',
      additionalProperties: false,
      default: {},
      properties: {
        drainSeconds: { description: 'On SIGTERM: refuse new calls with 503 and wait up to this long for calls to end.', type: 'integer', minimum: 0, default: 30 },
      },
    },
  },
} as const;

export type TeamsCloud = 'commercial' | 'gcch' | 'dod';

/**
 * The Microsoft clouds a Direct Routing SBC can serve (teams-direct-routing §1.2, §1.4): the SIP
 * proxies in failover order, the ranges Teams signals from, and the domain every proxy of that
 * cloud is under. `teams.proxies` and `teams.sourceCidrs` default to the chosen cloud's.
 */
export const TEAMS_CLOUDS: Readonly<Record<TeamsCloud, { proxies: readonly string[]; sourceCidrs: readonly string[]; domain: string; fixedSignalingPort: boolean }>> = {
  commercial: {
    proxies: ['sip.pstnhub.microsoft.com', 'sip2.pstnhub.microsoft.com', 'sip3.pstnhub.microsoft.com'],
    // 52.120.0.0/14 contains the 52.122.0.0/15 of newer Microsoft text (§1.4).
    sourceCidrs: ['52.112.0.0/14', '52.120.0.0/14'],
    domain: 'pstnhub.microsoft.com',
    fixedSignalingPort: false,
  },
  // GCC High and DoD: one proxy, no sip2/sip3, and the SBC must listen on 5061.
  gcch: { proxies: ['sip.pstnhub.gov.teams.microsoft.us'], sourceCidrs: ['52.127.88.0/21'], domain: 'pstnhub.gov.teams.microsoft.us', fixedSignalingPort: true },
  dod: { proxies: ['sip.pstnhub.dod.teams.microsoft.us'], sourceCidrs: ['52.127.64.0/21'], domain: 'pstnhub.dod.teams.microsoft.us', fixedSignalingPort: true },
};

export interface Config {
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' };
  sipServer: {
    mode: 'embedded' | 'external';
    contacts: string[];
    externalIp: string;
    tls: { keyFile: string; certFile: string; chainFile: string; caFile: string; verifyPeer: boolean; verifyClients: boolean; watchIntervalSec: number; reloadGraceSec: number };
    admin: { host: string; port: number; secret: string };
    cdrs: boolean;
    prometheusScrapePort: string;
    dropConnectionOnRetryAfter: boolean;
  };
  teams: {
    cloud: TeamsCloud;
    proxies: { host: string; port: number }[];
    hosts: Record<string, string>;
    dnsServers: string[];
    signalingPort: number;
    sbcHeader: string;
    sourceCidrs: string[];
    nextHop: string;
    inviteTimeoutMs: number;
  };
  carriers: { unknownSource: 'reject' | 'drop'; earlyMedia: 'pass' | 'convert-to-180'; reliableProvisionals: 'supported' | 'off'; setupBudgetMs: number };
  media: { rtpengines: string[]; commandTimeoutMs: number; healthIntervalMs: number; failuresBeforeDown: number; profiles: Record<string, unknown> };
  calls: GatewayFeatures;
  ops: {
    httpHost: string;
    httpPort: number;
    adminToken: string;
    optionsIntervalSec: number;
    optionsFailuresBeforeDown: number;
    optionsTimeoutMs: number;
    optionsPerTenant: boolean;
    carrierOptionsIntervalSec: number;
    cdrStream: string;
    cdrStreamMaxLen: number;
    dnsServers: string[];
  };
  shutdown: { drainSeconds: number };
}
