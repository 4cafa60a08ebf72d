import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type EnvironmentState, type Release } from '@slipway/core';
import { afterAll, beforeAll } from 'vitest';
import { shopConfig } from '../support/fixtures.ts';
import { localDynamo } from '../support/stand-ins.ts';

/**
 * The two implementations every contract suite runs against: the in-memory fake, and the DynamoDB
 * store on the local server, each case on a table of its own. Call at the top of a test file.
 */
export function implementations<T>(
  prefix: string,
  fake: () => T,
  dynamoStore: (client: DynamoDBDocumentClient, tableName: string) => T,
): [string, () => Promise<T>][] {
  let dynamo: Awaited<ReturnType<typeof localDynamo>>;
  beforeAll(async () => {
    dynamo = await localDynamo();
  });
  afterAll(async () => dynamo.close());
  return [
    ['in-memory fake', async () => fake()],
    ['DynamoDB', async () => dynamoStore(dynamo.client, await dynamo.freshTable(prefix))],
  ];
}

/** Release ids in the order they were made, as ULIDs are. */
let sequence = 0;
export function releaseId(): string {
  sequence += 1;
  return `01t${String(sequence).padStart(10, '0')}aaaaaaaaaaaaa`;
}

export function aRelease(app = 'shop', overrides: Partial<Release> = {}): Release {
  const id = overrides.id ?? releaseId();
  return {
    id,
    app,
    version: `1.0.${sequence}`,
    artifact: { key: `artifacts/${app}/x.tar.gz`, sha256: 'a'.repeat(64), size: 10 },
    description: '',
    status: 'pending',
    openedBy: 'alice@example.com',
    createdAt: '2026-01-01T00:00:00.000Z',
    updatedAt: '2026-01-01T00:00:00.000Z',
    config: { ...shopConfig, name: app },
    ...overrides,
  };
}

export function environmentsOf(release: Release): EnvironmentState[] {
  return release.config.environments.map((env, order) => ({
    releaseId: release.id,
    app: release.app,
    environment: env.name,
    order,
    status: 'pending',
  }));
}

export const T0 = '2026-01-01T00:00:00.000Z';
/** `T0` plus `seconds`, as an ISO time. */
export const at = (seconds: number) => new Date(Date.parse(T0) + seconds * 1000).toISOString();
