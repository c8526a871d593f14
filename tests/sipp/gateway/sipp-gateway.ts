/**
 * SIPp carriers for the gateway tests: carrier UACs (PSTN → Teams) on 127.0.6.10-20 sending
 * to the gateway's UDP/TCP port, and carrier targets (Teams → PSTN) as SIPp UAS on
 * 127.0.6.30-32:5060. Scenarios live in ./scenarios.
 */
import { readFileSync } from 'node:fs';
import { isRtcp } from '../../helpers/rtp.js';
import path from 'node:path';
import { expect } from 'vitest';
import { UdpPeer, freePort } from '../../helpers/net.js';
import { type SippProcess, type SippResult, type SippTransport, parseMessageLog, runSipp, sippReport, spawnSipp, startSippUas } from '../../helpers/sipp.js';
import { GW_IP } from '../../integration/gateway/harness.js';

export const GW_SCENARIOS = path.resolve(import.meta.dirname, 'scenarios');
export const PCAP_G711A = '/usr/share/sip-tester/g711a.pcap';

export interface CarrierCallOptions {
  scenario: string;
  /** Carrier source address (127.0.6.10-19 allowed, 127.0.6.20 not). */
  from: string;
  /** Called number (Request-URI user). */
  to: string;
  fromUser?: string;
  /** One extra header line, e.g. `P-Asserted-Identity: <sip:+44...@carrier>`. */
  extraHeader?: string;
  /** SDP c=/m= of the offer (default: the SIPp address, port 6000). */
  rtp?: { ip: string; port: number };
  transport?: SippTransport;
  /** -d: pause before BYE / CANCEL (ms). */
  pauseMs?: number;
  calls?: number;
  rate?: number;
  ratePeriodMs?: number;
  keys?: Record<string, string | number>;
  timeoutMs?: number;
}

function carrierArgs(o: CarrierCallOptions, port: number) {
  return {
    scenario: path.join(GW_SCENARIOS, o.scenario),
    localIp: o.from,
    localPort: port,
    remote: `${GW_IP}:5060`,
    transport: o.transport ?? ('u1' as SippTransport),
    service: o.to,
    calls: o.calls ?? 1,
    ...(o.rate !== undefined ? { rate: o.rate } : {}),
    ...(o.ratePeriodMs !== undefined ? { ratePeriodMs: o.ratePeriodMs } : {}),
    pauseMs: o.pauseMs ?? 200,
    keys: {
      from_user: o.fromUser ?? '+14155550123',
      extra_header: o.extraHeader ?? 'X-Carrier-Test: 1',
      rtp_ip: o.rtp?.ip ?? o.from,
      rtp_port: o.rtp?.port ?? 6000,
      ...o.keys,
    },
    timeoutMs: o.timeoutMs ?? 15_000,
    label: `gw-${o.scenario}`,
  };
}

/** Runs a carrier UAC to completion. */
export async function carrierCall(o: CarrierCallOptions): Promise<SippResult> {
  const port = await freePort(o.from, o.transport === 't1' || o.transport === 'tn' ? ['tcp'] : ['udp']);
  return runSipp(carrierArgs(o, port));
}

/** Starts a carrier UAC and returns at once (the test drives Teams meanwhile). */
export async function carrierCallAsync(o: CarrierCallOptions): Promise<SippProcess> {
  const port = await freePort(o.from, o.transport === 't1' || o.transport === 'tn' ? ['tcp'] : ['udp']);
  return spawnSipp(carrierArgs(o, port));
}

export interface TargetOptions {
  scenario: string;
  /** 127.0.6.30, .31 (udp) or .32 (tcp). */
  ip: string;
  transport?: SippTransport;
  calls?: number;
  keys?: Record<string, string | number>;
  rtp?: { ip: string; port: number };
  timeoutMs?: number;
}

/** Starts a carrier target (SIPp UAS on ip:5060). */
export function startTarget(o: TargetOptions): Promise<SippProcess> {
  return startSippUas({
    scenario: path.join(GW_SCENARIOS, o.scenario),
    localIp: o.ip,
    localPort: 5060,
    transport: o.transport ?? 'u1',
    calls: o.calls ?? 1,
    keys: { rtp_ip: o.rtp?.ip ?? o.ip, rtp_port: o.rtp?.port ?? 6000, ...o.keys },
    timeoutMs: o.timeoutMs ?? 20_000,
    label: `gw-${o.scenario}`,
  });
}

/** SIP messages SIPp received whose start line matches. */
export function received(r: SippResult, startLine: RegExp): string[] {
  return parseMessageLog(r.messageLog)
    .filter((m) => m.direction === 'received' && startLine.test(m.firstLine))
    .map((m) => m.text);
}

/** The body of a SIP message text as SIPp logged it (after the first blank line). */
export const bodyOf = (text: string): string => text.split(/\r?\n\r?\n/).slice(1).join('\n\n');

/** What a running SIPp received so far (its message log is written as it goes). */
export function receivedSoFar(dir: string, startLine: RegExp): string[] {
  return parseMessageLog(readFileSync(`${dir}/messages.log`, 'utf8'))
    .filter((m) => m.direction === 'received' && startLine.test(m.firstLine))
    .map((m) => m.text);
}

/** Final statuses (>= 200) SIPp received for INVITEs. */
export function finalStatuses(r: SippResult): number[] {
  return parseMessageLog(r.messageLog)
    .filter((m) => m.direction === 'received' && /^SIP\/2\.0 [2-6]\d\d/.test(m.firstLine) && /^CSeq:\s*\d+\s+INVITE/im.test(m.text))
    .map((m) => Number(m.firstLine.split(' ')[1]));
}

export function expectSippOk(r: SippResult): void {
  expect(r.exitCode, sippReport(r)).toBe(0);
  expect(r.stats?.successful, sippReport(r)).toBeGreaterThan(0);
  expect(r.stats?.failed ?? 0, sippReport(r)).toBe(0);
}

export function header(text: string, name: string): string | undefined {
  const head = text.split(/\r?\n\r?\n/)[0] ?? '';
  const m = new RegExp(`^${name}\\s*:\\s*(.*)$`, 'im').exec(head);
  return m?.[1]?.trim();
}

/** RTP (version 2, not RTCP): the filter for media sockets. */
export function isRtpDatagram(d: { data: Buffer }): boolean {
  return d.data.length >= 12 && d.data[0]! >> 6 === 2 && !isRtcp(d.data);
}

/** Where rtpengine expects the carrier target's RTP: c=/m= of the INVITE the target got, and that SDP. */
export function carrierSideAddress(target: { dir: string }): { address: string; port: number; sdp: string } {
  const log = readFileSync(`${target.dir}/messages.log`, 'utf8');
  const inv = log.slice(log.indexOf('INVITE sip:'));
  const c = /c=IN IP4 (\S+)/.exec(inv);
  const mm = /m=audio (\d+)/.exec(inv);
  if (!c || !mm) throw new Error('no SDP in the INVITE the carrier target received');
  return { address: c[1]!, port: Number(mm[1]), sdp: inv };
}

/**
 * One OPTIONS over UDP from `ip` to the gateway: the final response, or undefined when none came
 * within `timeoutMs` (drop mode).
 */
export async function optionsFrom(ip: string, n: number, timeoutMs = 5000): Promise<{ status: number; text: string } | undefined> {
  const peer = await UdpPeer.bind(ip);
  try {
    const msg = [`OPTIONS sip:${GW_IP}:5060 SIP/2.0`, `Via: SIP/2.0/UDP ${ip}:${peer.port};branch=z9hG4bK-opt-${n};rport`, 'Max-Forwards: 70', `From: <sip:ping@${ip}>;tag=o${n}`, `To: <sip:${GW_IP}>`, `Call-ID: options-${n}@${ip}`, 'CSeq: 1 OPTIONS', 'Content-Length: 0', '', ''].join('\r\n');
    await peer.send(msg, GW_IP, 5060);
    const d = await peer.waitFor((x) => /^SIP\/2\.0 [2-6]/.test(x.text), timeoutMs).catch(() => undefined);
    return d ? { status: Number(d.text.split(' ')[1]), text: d.text } : undefined;
  } finally {
    await peer.close();
  }
}
