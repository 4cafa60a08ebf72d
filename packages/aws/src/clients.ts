import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

export interface AwsConnection {
  region: string;
  /** Set for the local stand-ins; absent on AWS, where the SDK finds the endpoints itself. */
  endpoints?: { dynamodb?: string; s3?: string };
  credentials?: { accessKeyId: string; secretAccessKey: string };
}

export function createDocumentClient(connection: AwsConnection): DynamoDBDocumentClient {
  const client = new DynamoDBClient({
    region: connection.region,
    ...(connection.endpoints?.dynamodb ? { endpoint: connection.endpoints.dynamodb } : {}),
    ...(connection.credentials ? { credentials: connection.credentials } : {}),
  });
  return DynamoDBDocumentClient.from(client, {
    marshallOptions: { removeUndefinedValues: true, convertClassInstanceToMap: false },
  });
}

export function createS3Client(connection: AwsConnection): S3Client {
  return new S3Client({
    region: connection.region,
    ...(connection.endpoints?.s3 ? { endpoint: connection.endpoints.s3, forcePathStyle: true } : {}),
    ...(connection.credentials ? { credentials: connection.credentials } : {}),
    // The SDK's default adds a CRC32 of an empty body to presigned URLs, which S3 then rejects.
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
}
