import type { AppConfig } from '@slipway/core';

/**
 * The app a newcomer finds on first start: staging (2 hosts, all at once) and production (4 hosts,
 * rolling 2 at a time, one approval). Its hosts are folders under `<dataDir>/fleet/`.
 */
export const DEMO_APP = {
  name: 'demo',
  deployRoot: '/srv/demo',
  keepReleases: 5,
  sharedPaths: ['storage'],
  hooks: {
    postDeploy: '',
    preRelease: '',
    postRelease: '',
    healthCheck: 'test -f "$RELEASE_DIR/index.html"',
  },
  environments: [
    {
      name: 'staging',
      targets: { hosts: ['staging-1', 'staging-2'] },
      strategy: { type: 'all-at-once' },
    },
    {
      name: 'production',
      targets: { hosts: ['prod-1', 'prod-2', 'prod-3', 'prod-4'] },
      strategy: { type: 'rolling', batchSize: 2 },
      approval: { approvers: ['approver@example.com'], required: 1, timeoutHours: 72 },
    },
  ],
} as const;

export function demoHosts(config: AppConfig): string[] {
  return config.environments.flatMap((env) => ('hosts' in env.targets ? env.targets.hosts : []));
}
