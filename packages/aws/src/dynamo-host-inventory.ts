import type { HostInventoryStore, HostRecord } from '@slipway/core';
import type { TableAccess } from './dynamo-table-access.ts';
import { keys, withoutKeys } from './table.ts';

/** Each host's last known state: `FLEET#<app>#<env>` / `HOST#<host>`, one item per host, written whole. */
export function createDynamoHostInventory(table: TableAccess): HostInventoryStore {
  const { batchPut, queryPrefix } = table;
  return {
    async putHostRecords(records: HostRecord[]) {
      await batchPut(records.map((record) => ({ ...keys.hostRecord(record.app, record.environment, record.host), ...record })));
    },

    async listHostRecords(app, environment) {
      const { pk } = keys.hostRecord(app, environment, '');
      // Sort keys order the hosts.
      return (await queryPrefix(pk, 'HOST#')).map((item) => withoutKeys<HostRecord>(item));
    },
  };
}
