import { describe, expect, it } from 'vitest';
import { FakeClock } from '../../../../src/util/clock.js';
import { FixedDelayQueue } from '../../../../src/sip/transaction/fixed-delay-queue.js';
import { LINGER_GRAIN_MS } from '../../../../src/sip/transaction/transaction-layer.js';
import { createResponse } from '../../../../src/sip/transaction/response.js';
import { flowOf, makeRequest, rig } from './helpers.js';

function setup(delay = 100) {
  const clock = new FakeClock();
  const fired: Array<[string, number]> = [];
  const q = new FixedDelayQueue<string>(clock, delay, (item) => fired.push([item, clock.now()]));
  return { clock, fired, q };
}

describe('FixedDelayQueue (shared fixed-delay timers)', () => {
  it('fires every entry its delay after it was added, in order, with one clock timer', () => {
    const { clock, fired, q } = setup();
    q.add('a');
    clock.advance(30);
    q.add('b');
    q.add('c');
    expect(clock.pending).toBe(1);
    expect(q.size).toBe(3);
    clock.advance(69);
    expect(fired).toEqual([]);
    clock.advance(1);
    expect(fired).toEqual([['a', 100]]);
    clock.advance(30);
    expect(fired).toEqual([['a', 100], ['b', 130], ['c', 130]]);
    expect(q.size).toBe(0);
    expect(clock.pending).toBe(0);
  });

  it('a cancelled entry never fires; cancelling the last live one drops the clock timer', () => {
    const { clock, fired, q } = setup();
    const a = q.add('a');
    clock.advance(10);
    const b = q.add('b');
    q.cancel(a, 'a');
    q.cancel(a, 'a'); // twice: harmless
    q.cancel(b, 'not-b'); // wrong item: ignored
    clock.advance(200);
    expect(fired).toEqual([['b', 110]]);
    const c = q.add('c');
    q.cancel(c, 'c');
    expect(clock.pending).toBe(0);
    clock.advance(500);
    expect(fired).toEqual([['b', 110]]);
  });

  it('entries added or cancelled while expiring are handled after the current one', () => {
    const clock = new FakeClock();
    const fired: Array<[string, number]> = [];
    let slotC = -1;
    const q: FixedDelayQueue<string> = new FixedDelayQueue<string>(clock, 100, (item) => {
      fired.push([item, clock.now()]);
      if (item === 'a') {
        q.add('again');
        q.cancel(slotC, 'c');
      }
    });
    q.add('a');
    clock.advance(50);
    slotC = q.add('c');
    clock.advance(50);
    expect(fired).toEqual([['a', 100]]);
    expect(clock.pending).toBe(1);
    clock.advance(100);
    expect(fired).toEqual([['a', 100], ['again', 200]]);
    expect(clock.pending).toBe(0);
  });

  it('keeps working across many entries (the spent prefix is dropped)', () => {
    const { clock, fired, q } = setup(10);
    for (let i = 0; i < 5000; i++) {
      q.add(String(i));
      clock.advance(1);
    }
    clock.advance(10);
    expect(fired).toHaveLength(5000);
    expect(fired[4999]).toEqual(['4999', 5009]);
    expect(clock.pending).toBe(0);
  });

  it('clear() drops every entry and the timer', () => {
    const { clock, fired, q } = setup();
    q.add('a');
    q.add('b');
    q.clear();
    expect(clock.pending).toBe(0);
    clock.advance(1000);
    expect(fired).toEqual([]);
  });
});

describe('FixedDelayQueue with a grain', () => {
  it('fires only on multiples of the grain, never early: entries due within one grain expire together', () => {
    const clock = new FakeClock();
    const fired: Array<[string, number]> = [];
    const q = new FixedDelayQueue<string>(clock, 100, (item) => fired.push([item, clock.now()]), 50);
    q.add('a'); // due 100: on the grid, exact
    clock.advance(5);
    q.add('b'); // due 105
    clock.advance(40);
    q.add('c'); // due 145
    clock.advance(55); // t = 100
    expect(fired).toEqual([['a', 100]]);
    clock.advance(49);
    expect(fired).toEqual([['a', 100]]);
    clock.advance(1); // t = 150: b and c in one firing of the clock timer
    expect(fired).toEqual([['a', 100], ['b', 150], ['c', 150]]);
    expect(clock.pending).toBe(0);
  });
});

describe('lingering transactions share the layer queues', () => {
  it('a hundred calls lingering in Accepted (Timer L) and Completed (Timer J) use one clock timer and end on the linger grain', async () => {
    const r = rig({ tryingDelayMs: 200 });
    for (let i = 0; i < 100; i++) {
      const inv = makeRequest('INVITE');
      r.layer.receive(inv, flowOf());
      const ist = r.core.requests.at(-1)!.txn!;
      await ist.respond(createResponse(inv, 200, undefined, `t${i}`));
      const bye = makeRequest('BYE', { toTag: `t${i}`, callId: inv.callId, fromTag: inv.fromTag!, cseq: 2 });
      r.layer.receive(bye, flowOf());
      await r.core.requests.at(-1)!.txn!.respond(createResponse(bye, 200));
      r.clock.advance(1);
    }
    expect(r.layer.stats()).toMatchObject({ ist: 100, nist: 100 });
    expect(r.clock.pending).toBe(1);
    expect(r.transport.responses(100)).toHaveLength(0); // answered at once: no 100 Trying
    // Added at t = 0…99, due at 32,000…32,099: the first ends on time (32,000 is on the grain),
    // the other 99 together at the next grain point, 32,250; none ends before 64*T1.
    r.clock.advance(31_899); // t = 31,999
    expect(r.layer.stats()).toMatchObject({ ist: 100, nist: 100 });
    r.clock.advance(1); // t = 32,000
    expect(r.layer.stats()).toMatchObject({ ist: 99, nist: 99 });
    r.clock.advance(LINGER_GRAIN_MS - 1);
    expect(r.layer.stats()).toMatchObject({ ist: 99, nist: 99 });
    r.clock.advance(1); // t = 32,250
    expect(r.layer.stats()).toMatchObject({ ist: 0, nist: 0 });
    expect(r.clock.pending).toBe(0);
  });
});
