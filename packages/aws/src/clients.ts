import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { type RecordCall, recordCalls } from './call-recorder.ts';

export interface AwsConnection {
  region: string;
  /** Set for the local stand-ins; absent on AWS, where the SDK finds the endpoints itself. */
  endpoints?: { dynamodb?: string; s3?: string };
  credentials?: { accessKeyId: string; secretAccessKey: string };
  /**
   * Told every AWS action the client's commands need (tests prove IAM with it). Absent in
   * production: then no middleware is added at all.
   */
  recordCall?: RecordCall;
}

export function createDocumentClient(connection: AwsConnection): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    region: connection.region,
    ...(connection.endpoints?.dynamodb ? { endpoint: connection.endpoints.dynamodb } : {}),
    ...(connection.credentials ? { credentials: connection.credentials } : {}),
  });
  // The DocumentClient shares this client's middleware stack; its commands arrive as PutItem, Query...
  if (connection.recordCall) recordCalls(client, connection.recordCall);
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}

export function createS3Client(connection: AwsConnection): S3Client {
  const client = new S3Client({
    region: connection.region,
    ...(connection.endpoints?.s3 ? { endpoint: connection.endpoints.s3, forcePathStyle: true } : {}),
    ...(connection.credentials ? { credentials: connection.credentials } : {}),
    // The SDK's default adds a CRC32 of an empty body to presigned URLs, which S3 then rejects.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  if (connection.recordCall) recordCalls(client, connection.recordCall);
  return client;
}
