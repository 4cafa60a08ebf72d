import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { ReleaseStore } from '@slipway/core';
import { createDynamoAppStore } from './dynamo-app-store.ts';
import { createDynamoArtifactRecords } from './dynamo-artifact-records.ts';
import { createDynamoEnvironmentLive } from './dynamo-environment-live.ts';
import { createDynamoEventStore } from './dynamo-event-store.ts';
import { createDynamoIdempotencyStore } from './dynamo-idempotency-store.ts';
import { createDynamoHostInventory } from './dynamo-host-inventory.ts';
import { createDynamoLockStore } from './dynamo-lock-store.ts';
import { createDynamoPlanStore } from './dynamo-plan-store.ts';
import { createDynamoReleasePurge, createDynamoReleaseRecords } from './dynamo-release-records.ts';
import { createDynamoStepStore } from './dynamo-step-store.ts';
import { createTableAccess } from './dynamo-table-access.ts';
import { createDynamoWholeRelease } from './dynamo-whole-release.ts';

export { createDynamoAppStore } from './dynamo-app-store.ts';
export { createDynamoArtifactRecords } from './dynamo-artifact-records.ts';
export { createDynamoEnvironmentLive } from './dynamo-environment-live.ts';
export { createDynamoEventStore } from './dynamo-event-store.ts';
export { createDynamoIdempotencyStore } from './dynamo-idempotency-store.ts';
export { createDynamoHostInventory } from './dynamo-host-inventory.ts';
export { createDynamoLockStore } from './dynamo-lock-store.ts';
export { createDynamoPlanStore } from './dynamo-plan-store.ts';
export { createDynamoReleasePurge, createDynamoReleaseRecords } from './dynamo-release-records.ts';
export { createDynamoStepStore } from './dynamo-step-store.ts';
export { createTableAccess, type TableAccess } from './dynamo-table-access.ts';
export { createDynamoWholeRelease } from './dynamo-whole-release.ts';

/**
 * Every port of the release table (table.ts lists the items), as the one object the runtimes wire.
 * Each part is its own store over the same table; their items never share a key.
 */
export function createDynamoReleaseStore(client: DynamoDBDocumentClient, tableName: string): ReleaseStore {
  const table = createTableAccess(client, tableName);
  return {
    ...createDynamoAppStore(table),
    ...createDynamoReleaseRecords(table),
    ...createDynamoWholeRelease(table),
    ...createDynamoReleasePurge(table),
    ...createDynamoEventStore(table),
    ...createDynamoLockStore(table),
    ...createDynamoPlanStore(table),
    ...createDynamoStepStore(table),
    ...createDynamoEnvironmentLive(table),
    ...createDynamoArtifactRecords(table),
    ...createDynamoIdempotencyStore(table),
    ...createDynamoHostInventory(table),
  };
}
