import { type DynamoDBDocumentClient, PutCommand } from '@aws-sdk/lib-dynamodb';
import { DependencyUnavailableError } from '@slipway/core';

const TRANSIENT = new Set([
  'ProvisionedThroughputExceededException',
  'ThrottlingException',
  'RequestLimitExceeded',
  'InternalServerError',
  'ServiceUnavailable',
  'SlowDown',
  'TimeoutError',
  'TooManyRequestsException',
]);

export function isConditionFailure(error: unknown): boolean {
  return error instanceof Error && error.name === 'ConditionalCheckFailedException';
}

/** SDK failures become domain errors: transient ones retryable, the rest passed on as bugs. */
export function translateSdkError(error: unknown, what: string): unknown {
  if (!(error instanceof Error)) return error;
  const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode ?? 0;
  const retryable = (error as { $retryable?: unknown }).$retryable !== undefined || status === 429 || status >= 500;
  const network =
    'code' in error && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE'].includes(String(error.code));
  if (TRANSIENT.has(error.name) || retryable || network) {
    return new DependencyUnavailableError(`${what} is unavailable right now (${error.name}); try again`, {
      cause: error,
    });
  }
  return error;
}

/**
 * Runs a conditional write: its result, or, when DynamoDB says the condition did not hold, whatever
 * `otherwise` makes of that. Any other failure becomes a domain error.
 */
export async function conditionally<T, U>(what: string, run: () => Promise<T>, otherwise: () => U | Promise<U>): Promise<T | U> {
  try {
    return await run();
  } catch (error) {
    if (isConditionFailure(error)) return otherwise();
    throw translateSdkError(error, what);
  }
}

/** Writes the item unless one with its key exists; says whether it wrote. */
export function putIfAbsent(
  client: DynamoDBDocumentClient,
  tableName: string,
  item: Record<string, unknown>,
  what: string,
): Promise<boolean> {
  return conditionally(
    what,
    async () => {
      await client.send(new PutCommand({ TableName: tableName, Item: item, ConditionExpression: 'attribute_not_exists(pk)' }));
      return true;
    },
    () => false,
  );
}
