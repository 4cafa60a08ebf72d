import { createHash } from 'node:crypto';
import { AppConfig, type Clock } from '@slipway/core';

export function sha256(data: string | Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** A clock tests move by hand, for leases and expiry without sleeping. */
export function manualClock(
  start = '2026-01-01T00:00:00.000Z',
): Clock & { advance(ms: number): void; set(iso: string): void } {
  let now = new Date(start).getTime();
  return {
    now: () => new Date(now),
    advance: (ms) => {
      now += ms;
    },
    set: (iso) => {
      now = new Date(iso).getTime();
    },
  };
}

export const shopConfigInput = {
  name: 'shop',
  deployRoot: '/srv/shop',
  keepReleases: 5,
  sharedPaths: ['storage', '.env'],
  hooks: {
    postDeploy: 'npm ci --omit=dev',
    preRelease: '',
    postRelease: 'systemctl reload shop',
    healthCheck: 'curl -fsS http://127.0.0.1:8080/health',
  },
  environments: [
    {
      name: 'staging',
      targets: { hosts: ['i-0a1b2c3d4e5f60718'] },
      strategy: { type: 'all-at-once' },
    },
    {
      name: 'production',
      targets: { tags: { Role: 'web', Stage: 'prod' } },
      strategy: { type: 'rolling', batchSize: '25%' },
      bakeSeconds: 60,
      approval: { approvers: ['lead@example.com'], required: 1, timeoutHours: 72 },
    },
  ],
};

export const shopConfig = AppConfig.parse(shopConfigInput);
