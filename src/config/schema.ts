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
      },
    },
  },
} as const;

export interface Config {
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' };
  sipServer: {
    mode: 'embedded' | 'external';
    contacts: string[];
    externalIp: string;
    tls: { keyFile: string; certFile: string; chainFile: string; caFile: string; verifyPeer: boolean };
    admin: { host: string; port: number; secret: string };
    cdrs: boolean;
    prometheusScrapePort: string;
  };
}
