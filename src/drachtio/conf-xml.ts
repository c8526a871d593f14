import { readFileSync } from 'node:fs';
import { XMLParser } from 'fast-xml-parser';
import { ConfigError } from '../util/errors.js';
import type { RequestHandlerOption, SpammerRule } from './types.js';

/** What we take from drachtio.conf.xml: the common subset (issue: SIP contacts, admin, TLS, cdrs, spammers). */
export interface XmlConfig {
  admin?: { host?: string; port?: number; secret?: string };
  contacts: string[];
  externalIp?: string;
  tls?: { keyFile?: string; certFile?: string; chainFile?: string };
  cdrs?: boolean;
  spammers?: { action: 'reject' | 'discard'; tcpAction?: 'reject' | 'discard'; rules: SpammerRule[] };
  userAgentOptionsAutoRespond?: string;
  loglevel?: string;
  outboundProxy?: string;
  prometheusPort?: number;
  /** `<request-handlers><request-handler sip-method http-method verify-peer>url</request-handler>` (outbound mode). */
  requestHandlers?: RequestHandlerOption[];
}

export { ConfigError };

const arr = <T>(v: T | T[] | undefined): T[] => (v === undefined ? [] : Array.isArray(v) ? v : [v]);
const text = (v: unknown): string | undefined => {
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'object') return text((v as Record<string, unknown>)['#text']);
  return String(v).trim();
};

export function loadXmlConfig(file: string): XmlConfig {
  let raw: string;
  try {
    raw = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read (${(err as Error).message})`);
  }
  let doc: Record<string, any>;
  try {
    doc = new XMLParser({ ignoreAttributes: false, attributeNamePrefix: '@', parseTagValue: false, trimValues: true }).parse(raw, true);
  } catch (err) {
    throw new ConfigError(`${file}: invalid XML (${(err as Error).message})`);
  }
  const root = doc.drachtio;
  if (!root || typeof root !== 'object') throw new ConfigError(`${file}: missing <drachtio> root element`);
  const out: XmlConfig = { contacts: [] };
  const admin = root.admin;
  if (admin !== undefined) {
    const port = admin['@port'];
    if (port !== undefined && !/^\d+$/.test(String(port))) throw new ConfigError(`${file}: <admin port="${port}"> is not a port number`);
    out.admin = { host: text(admin) || '127.0.0.1' };
    if (port !== undefined) out.admin.port = Number(port);
    if (admin['@secret'] !== undefined) out.admin.secret = String(admin['@secret']);
  }
  const sip = root.sip ?? {};
  for (const c of arr(sip.contacts?.contact)) {
    const v = text(c);
    if (!v) continue;
    const ext = typeof c === 'object' ? (c as Record<string, string>)['@external-ip'] : undefined;
    out.contacts.push(ext ? `${v};external-ip=${ext}` : v);
  }
  const tls = sip.tls;
  if (tls) out.tls = { keyFile: text(tls['key-file']), certFile: text(tls['cert-file']), chainFile: text(tls['chain-file']) };
  if (sip['outbound-proxy']) out.outboundProxy = text(sip['outbound-proxy']);
  const uaAuto = text(sip['user-agent-options-auto-respond']);
  if (uaAuto) out.userAgentOptionsAutoRespond = uaAuto;
  const sp = sip.spammers;
  if (sp) {
    const rules: SpammerRule[] = arr(sp.header).map((h: Record<string, unknown>) => {
      const r: SpammerRule = { values: arr(h.value as unknown).map((v) => text(v) ?? '').filter(Boolean) };
      const name = h['@name'];
      if (name) r.header = String(name).toLowerCase();
      return r;
    });
    const action = String(sp['@action'] ?? 'discard');
    const tcpAction = String(sp['@tcp-action'] ?? 'discard');
    if (action !== 'reject' && action !== 'discard') throw new ConfigError(`${file}: <spammers action="${action}"> must be reject or discard`);
    out.spammers = { action, tcpAction: tcpAction === 'reject' ? 'reject' : 'discard', rules };
  }
  const handlers = root['request-handlers'];
  if (handlers !== undefined && handlers !== '') {
    out.requestHandlers = arr(typeof handlers === 'object' ? handlers['request-handler'] : undefined).map((h: unknown) => {
      const url = text(h);
      if (!url) throw new ConfigError(`${file}: <request-handler> without a URL`);
      const attrs = (typeof h === 'object' && h ? h : {}) as Record<string, unknown>;
      const method = String(attrs['@http-method'] ?? 'GET').toUpperCase();
      if (method !== 'GET' && method !== 'POST') throw new ConfigError(`${file}: <request-handler http-method="${String(attrs['@http-method'])}"> must be GET or POST`);
      const r: RequestHandlerOption = { url, sipMethod: String(attrs['@sip-method'] ?? '*'), httpMethod: method };
      const vp = attrs['@verify-peer'];
      if (vp !== undefined) r.verifyPeer = ['true', '1', 'yes'].includes(String(vp));
      return r;
    });
  }
  const cdrs = text(root.cdrs);
  if (cdrs !== undefined) out.cdrs = cdrs === 'true';
  const lvl = text(root.logging?.loglevel);
  if (lvl) out.loglevel = lvl;
  const prom = root.monitoring?.prometheus;
  if (prom && prom['@port']) out.prometheusPort = Number(prom['@port']);
  return out;
}
