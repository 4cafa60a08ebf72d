import type { EventStore, ReleaseEvent } from '@slipway/core';
import type { TableAccess } from './dynamo-table-access.ts';
import { keys, withoutKeys } from './table.ts';

/** A release's events: `REL#<id>` / `EVENT#<eventId>`, so a query reads them in id order. */
export function createDynamoEventStore(table: TableAccess): EventStore {
  const { putOnce, queryPrefix } = table;
  return {
    async appendEvent(event) {
      // Event ids are unique per append: an event already there is this very event, written before.
      await putOnce({ ...keys.releaseEvent(event.releaseId, event.id), ...event }, 'append event');
    },

    async listEvents(releaseId) {
      return (await queryPrefix(`REL#${releaseId}`, 'EVENT#')).map((item) => withoutKeys<ReleaseEvent>(item));
    },
  };
}
