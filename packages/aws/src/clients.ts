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

/**
 * Takes out the SDK's logger middleware. With no logger configured it still copies every input and
 * output through its sensitive-data filter to hand a no-op logger: on the embedded default a tenth
 * of a 500-host release read's CPU, and garbage on every call. Nothing here logs through the SDK.
 */
function withoutSdkLogging<Client extends { middlewareStack: { remove(name: string): boolean } }>(client: Client): Client {
  client.middlewareStack.remove('loggerMiddleware');
  return client;
}

export function createDocumentClient(connection: AwsConnection): DynamoDBDocumentClient {
  const client = withoutSdkLogging(
    new DynamoDBClient({
      region: connection.region,
      ...(connection.endpoints?.dynamodb ? { endpoint: connection.endpoints.dynamodb } : {}),
      ...(connection.credentials ? { credentials: connection.credentials } : {}),
    }),
  );
  // The DocumentClient shares this client's middleware stack; its commands arrive as PutItem, Query...
  if (connection.recordCall) recordCalls(client, connection.recordCall);
  return withoutSdkLogging(
    DynamoDBDocumentClient.from(client, {
      marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
    }),
  );
}

export function createS3Client(connection: AwsConnection): S3Client {
  const client = withoutSdkLogging(new S3Client({
    region: connection.region,
    ...(connection.endpoints?.s3 ? { endpoint: connection.endpoints.s3, forcePathStyle: true } : {}),
    ...(connection.credentials ? { credentials: connection.credentials } : {}),
    // The SDK's default adds a CRC32 of an empty body to presigned URLs, which S3 then rejects.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  }));
  if (connection.recordCall) recordCalls(client, connection.recordCall);
  return client;
}
