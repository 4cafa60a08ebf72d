import type { EnvironmentLive, EnvironmentLiveStore } from '@slipway/core';
import type { TableAccess } from './dynamo-table-access.ts';
import { keys, withoutKeys } from './table.ts';

/** What is live on an environment: `APP#<app>` / `LIVE#<env>`, written whole. */
export function createDynamoEnvironmentLive(table: TableAccess): EnvironmentLiveStore {
  const { get, put } = table;
  return {
    async getEnvironmentLive(app, environment) {
      const item = await get(keys.live(app, environment));
      return item ? withoutKeys<EnvironmentLive>(item) : undefined;
    },

    async putEnvironmentLive(live) {
      await put({ ...keys.live(live.app, live.environment), ...live });
    },
  };
}
