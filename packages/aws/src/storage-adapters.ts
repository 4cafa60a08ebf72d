import type { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Clock, SlipwayAdapters } from '@slipway/core';
import { createDynamoApprovalStore } from './dynamo-approval-store.ts';
import { createDynamoAuditStore } from './dynamo-audit-store.ts';
import { createDynamoReleaseStore } from './dynamo-release-store.ts';
import { createDynamoTokenStore } from './dynamo-token-store.ts';
import { createS3ArtifactStore } from './s3-artifact-store.ts';

export type StorageAdapters = Pick<SlipwayAdapters, 'store' | 'tokens' | 'approvalStore' | 'auditStore' | 'objects'>;

/**
 * The stores on the one table and the one bucket. Lambda hands in clients of AWS, the dev server
 * clients of dynalite and s3rver: the same adapters either way.
 */
export function createStorageAdapters(
  documents: DynamoDBDocumentClient,
  tableName: string,
  s3: S3Client,
  bucket: string,
  clock: Clock,
): StorageAdapters {
  return {
    store: createDynamoReleaseStore(documents, tableName),
    tokens: createDynamoTokenStore(documents, tableName),
    approvalStore: createDynamoApprovalStore(documents, tableName),
    auditStore: createDynamoAuditStore(documents, tableName),
    objects: createS3ArtifactStore(s3, bucket, clock),
  };
}
