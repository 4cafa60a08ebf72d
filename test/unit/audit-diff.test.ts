import { diffConfig } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { shopConfig } from '../support/fixtures.ts';

const [staging, production] = shopConfig.environments;

describe('diffConfig: what an app config write changed', () => {
  it('names nothing for the same config, whatever its key order (DynamoDB does not keep it)', () => {
    const reversed = (value: unknown): unknown =>
      Array.isArray(value)
        ? value.map(reversed)
        : value && typeof value === 'object'
          ? Object.fromEntries(Object.entries(value).reverse().map(([k, v]) => [k, reversed(v)]))
          : value;
    const shuffled = reversed(shopConfig) as typeof shopConfig;
    expect(JSON.stringify(shuffled)).not.toBe(JSON.stringify(shopConfig));
    expect(diffConfig(shopConfig, shuffled)).toEqual([]);
  });

  it('names top-level fields, one level into objects, and environments by name', () => {
    const after = {
      ...shopConfig,
      keepReleases: 7,
      hooks: { ...shopConfig.hooks, postRelease: 'systemctl restart shop', healthCheck: '' },
      environments: [
        { ...staging!, targets: { hosts: ['i-0a1b2c3d4e5f60719'] } },
        { ...production!, strategy: { type: 'rolling' as const, batchSize: '50%' }, bakeSeconds: 0 },
        { name: 'canary', targets: { hosts: ['i-0a1b2c3d4e5f60710'] }, strategy: { type: 'all-at-once' as const }, bakeSeconds: 0 },
      ],
    };
    expect(diffConfig(shopConfig, after)).toEqual([
      'hooks.healthCheck',
      'hooks.postRelease',
      'keepReleases',
      'environments[staging].targets',
      'environments[production].bakeSeconds',
      'environments[production].strategy',
      'environments[canary]',
    ]);
  });

  it('names an environment removed, an order changed, a field added or dropped', () => {
    const { webhookUrl: _none, ...withoutHook } = { ...shopConfig, webhookUrl: undefined };
    const after = { ...withoutHook, webhookUrl: 'https://chat.example.com/hook', environments: [production!] };
    expect(diffConfig(shopConfig, after)).toEqual(['webhookUrl', 'environments[staging]']);
    expect(diffConfig(shopConfig, { ...shopConfig, environments: [production!, staging!] })).toEqual(['environments']);
    const { approval: _approval, ...ungated } = production!;
    expect(diffConfig(shopConfig, { ...shopConfig, environments: [staging!, ungated] })).toEqual(['environments[production].approval']);
  });

  it('counts every field as changed when there was no config before', () => {
    expect(diffConfig(undefined, shopConfig)).toEqual([
      'deployRoot',
      'hooks',
      'keepReleases',
      'name',
      'queue',
      'sharedPaths',
      'environments[staging]',
      'environments[production]',
    ]);
  });
});
