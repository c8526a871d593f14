/**
 * drachtio request handlers (wire protocol §15, outbound connection mode): which new requests
 * are routed by a handler, the webhook call (GET with the request as query parameters, POST
 * with the raw SIP message as body), and the JSON routing instruction it answers.
 *
 * Facts from drachtio-server (request-handler.cpp, pending-request-controller.cpp,
 * controller.cpp): a handler for the exact method wins over `*`; the query is appended to
 * `<url>/` for GET and POST alike; `Accept: application/json`; POST bodies are
 * `text/plain; charset=UTF-8`; the HTTP status is not looked at, only the body; an answer that
 * is not a valid instruction is answered 500; `tcp://` / `tls://` handlers skip HTTP and act as
 * `route {uri: "host:port;transport=tcp|tls"}`.
 */
import http from 'node:http';
import https from 'node:https';
import { AppError, ConfigError } from '../util/errors.js';
import type { SipRequest } from '../sip/message/index.js';
import { parseNameAddr, parseUri } from '../sip/message/index.js';
import type { Flow } from '../sip/transport/types.js';
import type { RequestHandlerOption } from './types.js';

/** A routing instruction that is not valid JSON, names an unknown action or lacks its data: 500. */
export class RoutingInstructionError extends AppError {
  readonly statusCode = 500;
  constructor(message: string) {
    super('WIRE_ERR_ROUTING_INSTRUCTION', message);
  }
}

/** The webhook or the app cannot be reached, or no inbound app has the tag: 480 (drachtio's outboundFailed). */
export class OutboundUnavailableError extends AppError {
  readonly statusCode = 480;
  constructor(message: string, options?: { cause?: unknown }) {
    super('WIRE_ERR_OUTBOUND_UNAVAILABLE', message, options);
  }
}

export type RoutingError = RoutingInstructionError | OutboundUnavailableError;

/** A validated request handler. */
export interface RequestHandler {
  /** Upper-case SIP method, or `*`. */
  sipMethod: string;
  url: string;
  /** `webhook`: ask over HTTP(S); `direct`: connect to the app at `app`. */
  kind: 'webhook' | 'direct';
  httpMethod: 'GET' | 'POST';
  verifyPeer: boolean;
  /** direct handlers: the app address as a route uri (`host:port;transport=tcp|tls`). */
  app?: string;
}

/** Where an app listens (`route {uri}`, `tcp://`, `tls://`). */
export interface AppAddress {
  host: string;
  port: number;
  transport: 'tcp' | 'tls';
}

/** The instruction a webhook answers with (`{"action": …, "data": {…}}`). */
export type RoutingInstruction =
  | { action: 'reject'; status: number; reason?: string }
  | { action: 'redirect'; contacts: string[] }
  | {
      action: 'proxy';
      destinations: string[];
      recordRoute: boolean;
      followRedirects: boolean;
      simultaneous: boolean;
      provisionalTimeout: string;
      finalTimeout: string;
    }
  | { action: 'route'; uri: string; app: AppAddress }
  | { action: 'route'; tag: string };

/** drachtio's HTTP_BODY_LEN: a longer answer is not an instruction. */
export const MAX_INSTRUCTION_BYTES = 16384;
/** drachtio's curl timeouts: connect 2 s, whole request 3 s. */
export const DEFAULT_WEBHOOK_TIMEOUT_MS = 3000;

/** Validates handler options (config file or flags); throws ConfigError naming the handler. */
export function normalizeRequestHandlers(opts: readonly RequestHandlerOption[]): RequestHandler[] {
  return opts.map((o) => {
    // (credentials in the URL stay out of error messages)
    const where = `request handler "${o.url.replace(/\/\/[^/@]*@/, '//***@')}"`;
    const sipMethod = (o.sipMethod ?? '*').trim().toUpperCase();
    if (sipMethod !== '*' && !/^[A-Z]+$/.test(sipMethod)) throw new ConfigError(`${where}: sip-method "${o.sipMethod}" is not a SIP method or *`);
    const httpMethod = String(o.httpMethod ?? 'GET').toUpperCase();
    if (httpMethod !== 'GET' && httpMethod !== 'POST') throw new ConfigError(`${where}: http-method "${o.httpMethod}" must be GET or POST`);
    let u: URL;
    try {
      u = new URL(o.url.trim());
    } catch {
      throw new ConfigError(`${where}: not a URL`);
    }
    const base = { sipMethod, url: u.href, httpMethod: httpMethod as 'GET' | 'POST', verifyPeer: o.verifyPeer ?? false };
    if (u.protocol === 'http:' || u.protocol === 'https:') return { ...base, kind: 'webhook' as const };
    if (u.protocol === 'tcp:' || u.protocol === 'tls:') {
      if (!u.hostname || !u.port) throw new ConfigError(`${where}: ${u.protocol}// needs host:port`);
      const app = `${u.hostname}:${u.port};transport=${u.protocol.slice(0, 3)}`;
      return { ...base, url: `${u.protocol}//${u.host}`, kind: 'direct' as const, app };
    }
    throw new ConfigError(`${where}: the URL must be http://, https://, tcp://host:port or tls://host:port`);
  });
}

/** Handler lookup: the method's own handler, else `*` (drachtio RequestRouter::getRoute). */
export class RequestHandlerTable {
  readonly #byMethod = new Map<string, RequestHandler>();

  constructor(handlers: readonly RequestHandler[]) {
    // The first handler given for a method wins (drachtio keeps the first in its map).
    for (const h of handlers) if (!this.#byMethod.has(h.sipMethod)) this.#byMethod.set(h.sipMethod, h);
  }

  get size(): number {
    return this.#byMethod.size;
  }

  find(method: string): RequestHandler | undefined {
    return this.#byMethod.get(method) ?? this.#byMethod.get('*');
  }
}

function userOf(nameAddrOrUri: string | undefined): string {
  if (!nameAddrOrUri) return '';
  try {
    return parseUri(parseNameAddr(nameAddrOrUri).uri).user ?? '';
  } catch {
    return '';
  }
}

/**
 * The webhook URL: `<url>/?method=…&domain=<R-URI host>&protocol=…&source_address=…&fromUser=…
 * &toUser=…&uriUser=…&contentType=…&uri=<R-URI>` followed by the R-URI parameters as `k=v`.
 */
export function webhookUrl(handler: RequestHandler, req: SipRequest, flow: Flow): URL {
  const u = new URL(handler.url);
  if (!u.pathname.endsWith('/')) u.pathname += '/';
  let ruri: ReturnType<typeof parseUri> | undefined;
  try {
    ruri = req.parsedUri;
  } catch {
    ruri = undefined;
  }
  const q = u.searchParams;
  q.append('method', req.method);
  q.append('domain', ruri?.host ?? '');
  q.append('protocol', flow.protocol);
  q.append('source_address', flow.remoteAddress);
  q.append('fromUser', userOf(req.get('from')));
  q.append('toUser', userOf(req.get('to')));
  q.append('uriUser', ruri?.user ?? '');
  q.append('contentType', (req.contentType ?? '').split(';')[0]!.trim());
  q.append('uri', req.uri);
  for (const [k, v] of ruri?.params ?? []) q.append(k, v ?? '');
  return u;
}

/**
 * Asks the webhook and resolves with its answer body. Network failures, timeouts and aborts
 * reject with OutboundUnavailableError; an answer over MAX_INSTRUCTION_BYTES with
 * RoutingInstructionError.
 */
/** HTTP redirects a webhook may send before it answers (drachtio-server follows them too). */
export const MAX_WEBHOOK_REDIRECTS = 3;
const REDIRECT_STATUSES = new Set([301, 302, 303, 307, 308]);

export function callWebhook(
  handler: RequestHandler,
  req: SipRequest,
  flow: Flow,
  opts: { signal: AbortSignal; userAgent: string; agents?: { http: http.Agent; https: https.Agent } },
): Promise<string> {
  const body = handler.httpMethod === 'POST' ? (req.raw ?? req.toBuffer()) : undefined;
  return fetchInstruction(webhookUrl(handler, req, flow), handler.httpMethod, body, handler.verifyPeer, opts, 0);
}

/**
 * One HTTP exchange with the webhook. A redirect (301/302/303/307/308 with a Location) is
 * followed up to MAX_WEBHOOK_REDIRECTS times (303: as a GET without the body); any other non-2xx
 * answer means the router could not decide, like an unreachable one (OutboundUnavailableError).
 */
function fetchInstruction(
  url: URL,
  method: 'GET' | 'POST',
  body: Buffer | undefined,
  verifyPeer: boolean,
  opts: { signal: AbortSignal; userAgent: string; agents?: { http: http.Agent; https: https.Agent } },
  redirects: number,
): Promise<string> {
  const headers: Record<string, string> = { Accept: 'application/json', 'User-Agent': opts.userAgent };
  if (body) {
    headers['Content-Type'] = 'text/plain; charset=UTF-8';
    headers['Content-Length'] = String(body.length);
  }
  const secure = url.protocol === 'https:';
  const lib = secure ? https : http;
  const agent = secure ? opts.agents?.https : opts.agents?.http;
  const where = `request handler ${url.origin}${url.pathname}`;
  return new Promise<string>((resolve, reject) => {
    const fail = (err: Error): void => reject(new OutboundUnavailableError(`${where}: ${err.message}`, { cause: err }));
    const r = lib.request(url, { method, headers, signal: opts.signal, ...(agent ? { agent } : {}), ...(secure ? { rejectUnauthorized: verifyPeer } : {}) }, (res) => {
      const status = res.statusCode ?? 0;
      const location = res.headers.location;
      if (REDIRECT_STATUSES.has(status) && location) {
        res.resume();
        if (redirects >= MAX_WEBHOOK_REDIRECTS) {
          fail(new Error(`more than ${MAX_WEBHOOK_REDIRECTS} redirects`));
          return;
        }
        let next: URL;
        try {
          next = new URL(location, url);
        } catch {
          fail(new Error(`redirect to an invalid Location: ${location.slice(0, 100)}`));
          return;
        }
        if (next.protocol !== 'http:' && next.protocol !== 'https:') {
          fail(new Error(`redirect to a ${next.protocol} URL`));
          return;
        }
        const asGet = status === 303;
        fetchInstruction(next, asGet ? 'GET' : method, asGet ? undefined : body, verifyPeer, opts, redirects + 1).then(resolve, reject);
        return;
      }
      if (status < 200 || status > 299) {
        res.resume();
        fail(new Error(`answered HTTP ${status}`));
        return;
      }
      const chunks: Buffer[] = [];
      let size = 0;
      res.on('data', (c: Buffer) => {
        size += c.length;
        if (size > MAX_INSTRUCTION_BYTES) {
          res.destroy();
          reject(new RoutingInstructionError(`request handler answer exceeds ${MAX_INSTRUCTION_BYTES} bytes`));
          return;
        }
        chunks.push(c);
      });
      res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
      res.on('error', fail);
    });
    r.on('error', fail);
    r.end(body);
  });
}

function bool(data: Record<string, unknown>, key: string, dflt: boolean): boolean {
  const v = data[key];
  return typeof v === 'boolean' ? v : dflt;
}

function str(data: Record<string, unknown>, key: string, dflt: string): string {
  const v = data[key];
  return typeof v === 'string' ? v : dflt;
}

/** A value copied into a SIP header line must not break it. */
function headerSafe(v: string, what: string): string {
  if (/[\r\n\0]/.test(v)) throw new RoutingInstructionError(`${what} contains a line break`);
  return v.trim();
}

function stringList(v: unknown, what: string): string[] {
  if (typeof v === 'string') return [headerSafe(v, what)];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v.map((x: string) => headerSafe(x, what));
  throw new RoutingInstructionError(`'${what}' must be a string or an array of strings`);
}

/** `host:port[;transport=tcp|tls]` (drachtio makeOutboundConnection's pattern; default tcp). */
export function parseAppAddress(uri: string): AppAddress | undefined {
  const m = /^\s*(\[[0-9A-Fa-f:.]+\]|[^\s:;[\]]+):(\d{1,5})(?:;transport=(tcp|tls))?\s*$/i.exec(uri);
  if (!m) return undefined;
  const port = Number(m[2]);
  if (port < 1 || port > 65535) return undefined;
  return { host: m[1]!.replace(/^\[|\]$/g, ''), port, transport: (m[3]?.toLowerCase() as 'tcp' | 'tls' | undefined) ?? 'tcp' };
}

/** Parses `{"action": …, "data": {…}}`; throws RoutingInstructionError (→ 500). */
export function parseInstruction(text: string): RoutingInstruction {
  let root: unknown;
  try {
    root = JSON.parse(text);
  } catch (err) {
    throw new RoutingInstructionError(`request handler answer is not JSON: ${(err as Error).message}`);
  }
  if (!root || typeof root !== 'object' || Array.isArray(root)) throw new RoutingInstructionError('expected a JSON object');
  const { action, data } = root as { action?: unknown; data?: unknown };
  if (typeof action !== 'string') throw new RoutingInstructionError("missing or invalid 'action'");
  if (!data || typeof data !== 'object' || Array.isArray(data)) throw new RoutingInstructionError("missing 'data' object");
  const d = data as Record<string, unknown>;
  switch (action) {
    case 'reject': {
      const status = d.status;
      if (typeof status !== 'number' || !Number.isInteger(status) || status < 300 || status > 699) {
        throw new RoutingInstructionError("reject: 'status' must be a number from 300 to 699");
      }
      const reason = typeof d.reason === 'string' ? headerSafe(d.reason, 'reason') : undefined;
      return reason ? { action, status, reason } : { action, status };
    }
    case 'redirect': {
      const contacts = stringList(d.contact, 'contact').filter(Boolean);
      if (contacts.length === 0) throw new RoutingInstructionError("redirect: 'contact' is empty");
      return { action, contacts };
    }
    case 'proxy': {
      const destinations = d.destination === undefined ? [] : stringList(d.destination, 'destination').filter(Boolean);
      if (destinations.length === 0) throw new RoutingInstructionError("proxy: 'destination' is missing");
      return {
        action,
        destinations,
        recordRoute: bool(d, 'recordRoute', false),
        followRedirects: bool(d, 'followRedirects', true),
        simultaneous: bool(d, 'simultaneous', false),
        provisionalTimeout: str(d, 'provisionalTimeout', '5s'),
        finalTimeout: str(d, 'finalTimeout', '60s'),
      };
    }
    case 'route': {
      if (typeof d.uri === 'string') {
        const app = parseAppAddress(d.uri);
        if (!app) throw new RoutingInstructionError(`route: 'uri' "${d.uri}" is not host:port[;transport=tcp|tls]`);
        return { action, uri: d.uri, app };
      }
      if (typeof d.tag === 'string' && d.tag) return { action, tag: d.tag };
      throw new RoutingInstructionError("route: 'uri' or 'tag' must be a string");
    }
    default:
      throw new RoutingInstructionError(`unknown action '${action}': valid values are reject, redirect, proxy and route`);
  }
}
