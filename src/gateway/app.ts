import type { Logger } from 'pino';

/** The subset of drachtio-srf the gateway app uses (drachtio-srf ships no types). */
export interface SrfLike {
  options(handler: (req: any, res: any) => void): void;
  on(event: string, fn: (...args: any[]) => void): void;
}

export const GATEWAY_ALLOW = 'INVITE, ACK, CANCEL, BYE, OPTIONS, INFO, NOTIFY, REFER, UPDATE, PRACK';

/**
 * The call-control app. It talks to the SIP server only through drachtio-srf. For now it
 * answers OPTIONS (keep-alives from Teams and carriers); call routing is added on top.
 */
export function createGatewayApp(srf: SrfLike, deps: { logger: Logger }): void {
  srf.options((req, res) => {
    deps.logger.debug({ callId: req.get('Call-ID'), from: req.source_address }, 'OPTIONS');
    res.send(200, { headers: { Allow: GATEWAY_ALLOW, Accept: 'application/sdp' } });
  });
}
