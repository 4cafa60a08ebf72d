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

/**
 * The local DynamoDB (dynalite) wants an Authorization header of the right shape and never checks
 * the signature in it, so against it each request carries a fixed one instead of a SigV4 signature:
 * signing was a tenth of the embedded server's main thread under load (an HMAC chain and a SHA-256
 * of every body). Only ever with an endpoint of the caller's own; on AWS the SDK signs as it does.
 */
function withFixedAuthorization(client: DynamoDBClient, connection: AwsConnection): DynamoDBClient {
  const scope = `${connection.credentials?.accessKeyId ?? 'local'}/20200101/${connection.region}/dynamodb/aws4_request`;
  const authorization = `AWS4-HMAC-SHA256 Credential=${scope}, SignedHeaders=host;x-amz-date, Signature=unsigned`;
  client.middlewareStack.remove('httpSigningMiddleware');
  client.middlewareStack.add(
    (next) => (args) => {
      const { headers } = args.request as { headers: Record<string, string> };
      headers.authorization = authorization;
      headers['x-amz-date'] = '20200101T000000Z';
      return next(args);
    },
    { step: 'finalizeRequest', name: 'localFixedAuthorization', priority: 'low' },
  );
  return client;
}

export function createDocumentClient(connection: AwsConnection): DynamoDBDocumentClient {
  const endpoint = connection.endpoints?.dynamodb;
  const sdkClient = withoutSdkLogging(
    new DynamoDBClient({
      region: connection.region,
      ...(endpoint ? { endpoint } : {}),
      ...(connection.credentials ? { credentials: connection.credentials } : {}),
    }),
  );
  const client = endpoint ? withFixedAuthorization(sdkClient, connection) : sdkClient;
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
