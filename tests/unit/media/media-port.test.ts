/** The media layer satisfies call control's port (src/gateway/media-port.ts) as is. */
import { describe, expect, it } from 'vitest';
import type { MediaService, MediaSession as PortSession } from '../../../src/gateway/media-port.js';
import { MediaError, RtpenginePool, parseNgAddress } from '../../../src/media/index.js';

describe('RtpenginePool as the gateway MediaService', () => {
  it('is assignable to MediaService and creates sessions with the port shape', async () => {
    // 127.0.4.254:9 answers nothing; no command is sent in this test (no health checks).
    const pool = new RtpenginePool({ instances: ['127.0.4.254:9'], healthIntervalMs: 0 });
    const svc: MediaService = pool;
    const s: PortSession = svc.createSession({ callId: 'c', fromTag: 'f', codecs: ['PCMA'] });
    expect(typeof s.offer).toBe('function');
    expect(typeof s.answer).toBe('function');
    await expect(s.delete()).resolves.toBeUndefined();
    await svc.close();
    expect(() => svc.createSession({ callId: 'c2', fromTag: 'f' })).toThrow(MediaError);
  });

  it('validates its configuration', () => {
    expect(() => new RtpenginePool({ instances: [] })).toThrow(/at least one/);
    expect(() => new RtpenginePool({ instances: ['127.0.4.254:9', '127.0.4.254:9'], healthIntervalMs: 0 })).toThrow(/duplicate/);
    expect(() => parseNgAddress('localhost')).toThrow(/host:port/);
    expect(() => parseNgAddress('127.0.0.1:70000')).toThrow(/host:port/);
    expect(parseNgAddress('[::1]:2223')).toEqual({ host: '::1', port: 2223 });
  });
});
