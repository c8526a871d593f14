/**
 * The tenant store cannot answer (Redis down) for a number the gateway's snapshot does not hold:
 * an exact DID, with a store that preloads none (`preloadExactLimit: 0`, the million-DID setup).
 * The call gets 503 with Retry-After, and the gateway lives on: before, the lookup's rejection
 * went unhandled out of the call flow and Node ended the process.
 */
import { afterAll, afterEach, beforeAll, expect, it } from 'vitest';
import { step } from '../../helpers/fake-teams/index.js';
import { CARRIER_IPS, type GatewayHarness, logged, startGatewayHarness } from '../../integration/gateway/harness.js';
import { carrierCall, expectSippOk, finalStatuses, header, received } from './sipp-gateway.js';

let h: GatewayHarness;
beforeAll(async () => {
  h = await startGatewayHarness({ tenantStore: 'redis', preloadExactLimit: 0 });
});
afterEach(async () => h.afterEach());
afterAll(async () => h.close());

const C = CARRIER_IPS[5];

it('Redis down: a call to an exact DID gets 503 with Retry-After; calls the snapshot can route still work', async () => {
  await h.redis!.kill();
  const r = await carrierCall({ scenario: 'carrier-call-reject.xml', from: C, to: '+14255550888' });
  expectSippOk(r);
  expect(finalStatuses(r)).toEqual([503]);
  expect(header(received(r, /^SIP\/2\.0 503/)[0]!, 'Retry-After')).toBe('5');
  expect(logged(h, 'call flow failed: 503').at(-1)).toMatchObject({ code: 'ERR_TENANT_STORE_UNAVAILABLE' });
  // The process is alive and routes a number in a range (held by the snapshot).
  h.ft.script([step.ringing(0), step.answer(20)]);
  expectSippOk(await carrierCall({ scenario: 'carrier-call-bye.xml', from: C, to: '+14255550102' }));
});
