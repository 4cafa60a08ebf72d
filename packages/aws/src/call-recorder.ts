import { AsyncLocalStorage } from 'node:async_hooks';
import type { MiddlewareStack } from '@smithy/types';

/**
 * What one AWS request asks IAM for: the action (as a policy names it) on one resource. A request
 * that needs several (SendCommand: the document and each instance; CopyObject: read and write) is
 * recorded as several calls with the same `operation`.
 *
 * `resource` is an ARN. What the client cannot know is left as a token for the reader to fill in:
 * `{region}` and `{account}` (`arn:aws:dynamodb:{region}:{account}:table/slipway`); S3 ARNs and the
 * ARNs a request carries (Step Functions) are complete. `*` means the action has no resource.
 */
export interface AwsCall {
  /** The IAM prefix: dynamodb, s3, states, ssm, ses. */
  service: string;
  /** The SDK operation sent (`PutItem`, `HeadObject`). */
  operation: string;
  /** The IAM action it needs (`dynamodb:PutItem`, `s3:GetObject` for HeadObject). */
  action: string;
  resource: string;
  /** Why an action is needed that the operation's name does not say. */
  note?: string;
}

export type RecordCall = (call: AwsCall) => void;

/** The one thing the recorder needs of an SDK v3 client (every client and the DocumentClient have it). */
export interface MiddlewareClient<I extends object, O extends object> {
  middlewareStack: MiddlewareStack<I, O>;
}

const PREFIX: Record<string, string> = {
  DynamoDBClient: 'dynamodb',
  S3Client: 's3',
  SFNClient: 'states',
  SSMClient: 'ssm',
  SESv2Client: 'ses',
  SESClient: 'ses',
  CloudWatchLogsClient: 'logs',
};

/** S3 operations whose IAM action has another name (AWS's "actions, resources and condition keys" page for S3). */
const S3_ACTIONS: Record<string, string> = {
  HeadObject: 'GetObject',
  HeadBucket: 'ListBucket',
  ListObjects: 'ListBucket',
  ListObjectsV2: 'ListBucket',
  ListObjectVersions: 'ListBucketVersions',
  DeleteObjects: 'DeleteObject',
  CreateMultipartUpload: 'PutObject',
  UploadPart: 'PutObject',
  CompleteMultipartUpload: 'PutObject',
  GetObjectAttributes: 'GetObject',
};

/**
 * Adds a middleware that reports, for every command the client sends (and every URL it presigns,
 * which acts with the signer's permissions), what IAM is asked for. Recording never changes a
 * request and never fails one: an input it cannot read is recorded with resource `*`.
 */
export function recordCalls<I extends object, O extends object>(client: MiddlewareClient<I, O>, recordCall: RecordCall): void {
  client.middlewareStack.add(
    (next, context) => async (args) => {
      const service = PREFIX[context.clientName ?? ''] ?? (context.clientName ?? 'unknown').replace(/Client$/, '').toLowerCase();
      const operation = (context.commandName ?? 'Unknown').replace(/Command$/, '');
      const input = (args.input ?? {}) as Input;
      for (const call of describeCall(service, operation, input)) recordCall(call);
      try {
        return await next(args);
      } catch (error) {
        // S3 answers a missing key with 404 only to a caller who may list the bucket; anyone else gets
        // 403. Code that treats 404 as "not there" therefore needs s3:ListBucket as well.
        const status = (error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
        if (service === 's3' && status === 404 && (operation === 'HeadObject' || operation === 'GetObject')) {
          recordCall({
            service,
            operation,
            action: 's3:ListBucket',
            resource: s3Arn(input.Bucket),
            note: `${operation} of a missing key answers 404 only with s3:ListBucket (403 without), and the code relied on the 404`,
          });
        }
        throw error;
      }
    },
    { step: 'initialize', name: 'slipwayCallRecorder' },
  );
}

type Input = Record<string, unknown>;
const record = (value: unknown): Input => (value && typeof value === 'object' ? (value as Input) : {});
const list = (value: unknown): Input[] => (Array.isArray(value) ? value.map(record) : []);

export function describeCall(service: string, operation: string, input: Input): AwsCall[] {
  const needs = resourcesOf(service, operation, input);
  return needs.map(({ action, resource }) => ({ service, operation, action: `${service}:${action}`, resource }));
}

const anything = (operation: string) => [{ action: operation, resource: '*' }];

function resourcesOf(service: string, operation: string, input: Input): { action: string; resource: string }[] {
  switch (service) {
    case 'dynamodb':
      return dynamoResources(operation, input);
    case 's3':
      return s3Resources(operation, input);
    case 'states':
      return statesResources(operation, input);
    case 'ssm':
      return ssmResources(operation, input);
    case 'ses':
      return sesResources(operation, input);
    case 'cloudwatch':
      // DescribeAlarms by name: one alarm ARN per name (an alarm's ARN ends in its name).
      if (operation === 'DescribeAlarms' && Array.isArray(input.AlarmNames)) {
        return (input.AlarmNames as unknown[]).map((name) => ({ action: operation, resource: `arn:aws:cloudwatch:{region}:{account}:alarm:${String(name)}` }));
      }
      return anything(operation);
    case 'logs':
      return logsResources(operation, input);
    default:
      return anything(operation);
  }
}

const tableArn = (name: unknown, index?: unknown) =>
  `arn:aws:dynamodb:{region}:{account}:table/${String(name)}${index ? `/index/${String(index)}` : ''}`;

/** What a transaction's item needs: the same action as the single-item call it stands for. */
const TRANSACT_ACTIONS: Record<string, string> = { Put: 'PutItem', Update: 'UpdateItem', Delete: 'DeleteItem', ConditionCheck: 'ConditionCheckItem', Get: 'GetItem' };

function dynamoResources(operation: string, input: Input) {
  if (operation === 'BatchGetItem' || operation === 'BatchWriteItem') {
    return Object.keys(record(input.RequestItems)).map((table) => ({ action: operation, resource: tableArn(table) }));
  }
  if (operation === 'TransactWriteItems' || operation === 'TransactGetItems') {
    return list(input.TransactItems).flatMap((item) =>
      Object.entries(item).map(([kind, request]) => ({
        action: TRANSACT_ACTIONS[kind] ?? kind,
        resource: tableArn(record(request).TableName),
      })),
    );
  }
  if (input.TableName) return [{ action: operation, resource: tableArn(input.TableName, input.IndexName) }];
  return anything(operation);
}

const s3Arn = (bucket: unknown, key?: unknown) => `arn:aws:s3:::${String(bucket)}${key === undefined ? '' : `/${String(key)}`}`;

function s3Resources(operation: string, input: Input) {
  const action = S3_ACTIONS[operation] ?? operation;
  const versioned = input.VersionId !== undefined;
  if (operation === 'DeleteObjects') {
    return list(record(input.Delete).Objects).map((object) => ({
      action: object.VersionId ? 'DeleteObjectVersion' : 'DeleteObject',
      resource: s3Arn(input.Bucket, object.Key),
    }));
  }
  if (operation === 'CopyObject') {
    const source = String(input.CopySource ?? '').replace(/^\//, '').split('?')[0]!;
    return [
      { action: 'PutObject', resource: s3Arn(input.Bucket, input.Key) },
      { action: 'GetObject', resource: `arn:aws:s3:::${decodeURIComponent(source)}` },
    ];
  }
  if (input.Key !== undefined) {
    const objectAction = versioned && (action === 'GetObject' || action === 'DeleteObject') ? `${action}Version` : action;
    return [{ action: objectAction, resource: s3Arn(input.Bucket, input.Key) }];
  }
  if (input.Bucket !== undefined) return [{ action, resource: s3Arn(input.Bucket) }];
  return anything(action);
}

function statesResources(operation: string, input: Input) {
  const arn = input.executionArn ?? input.stateMachineArn ?? input.activityArn;
  return [{ action: operation, resource: typeof arn === 'string' ? arn : '*' }];
}

/** Hosts by id: EC2 instances (`i-`), and SSM hybrid managed instances (`mi-`, on premises). */
const instanceArn = (id: string) =>
  id.startsWith('mi-') ? `arn:aws:ssm:{region}:{account}:managed-instance/${id}` : `arn:aws:ec2:{region}:{account}:instance/${id}`;

function ssmResources(operation: string, input: Input) {
  if (operation !== 'SendCommand') return anything(operation);
  const document = String(input.DocumentName ?? '');
  // AWS-owned documents have no account in their ARN.
  const documentArn = document.startsWith('arn:')
    ? document
    : `arn:aws:ssm:{region}:${document.startsWith('AWS-') ? '' : '{account}'}:document/${document}`;
  const targets = (Array.isArray(input.InstanceIds) ? input.InstanceIds : []).map((id) => instanceArn(String(id)));
  // Targets by tag reach whichever instances carry them: IAM checks each, so any instance.
  if (list(input.Targets).length > 0) targets.push('arn:aws:ec2:{region}:{account}:instance/*');
  return [documentArn, ...targets].map((resource) => ({ action: operation, resource }));
}

/** Log events are read per stream; the rest of CloudWatch Logs by group. */
function logsResources(operation: string, input: Input) {
  if (!input.logGroupName) return anything(operation);
  const group = `arn:aws:logs:{region}:{account}:log-group:${String(input.logGroupName)}`;
  return [{ action: operation, resource: input.logStreamName ? `${group}:log-stream:${String(input.logStreamName)}` : `${group}:*` }];
}

function sesResources(operation: string, input: Input) {
  if (operation !== 'SendEmail' && operation !== 'SendRawEmail' && operation !== 'SendBulkEmail') return anything(operation);
  const from = String(input.FromEmailAddress ?? input.Source ?? '');
  const address = /<([^>]+)>/.exec(from)?.[1] ?? from;
  const identity = input.FromEmailAddressIdentityArn ?? `arn:aws:ses:{region}:{account}:identity/${address}`;
  const action = operation === 'SendBulkEmail' ? 'SendBulkEmail' : 'SendEmail';
  const needs = [{ action, resource: String(identity) }];
  // A configuration set named in the request is checked too (one attached to the identity by default is not visible here).
  if (input.ConfigurationSetName) {
    needs.push({ action, resource: `arn:aws:ses:{region}:{account}:configuration-set/${String(input.ConfigurationSetName)}` });
  }
  return needs;
}

/** A call tagged with whoever made it (a Lambda function's name, or any label the caller runs under). */
export interface AttributedCall extends AwsCall {
  fn: string;
}

/**
 * Tags calls with the function they were made for: `within(name, work)` runs `work` so that every
 * call it leads to (however deep, however late) is recorded as that function's. Calls made outside
 * any `within` are tagged `unknown`.
 */
export function createCallAttribution(record: (call: AttributedCall) => void): CallRecorder {
  const storage = new AsyncLocalStorage<{ fn: string }>();
  return {
    recordCall: (call) => record({ ...call, fn: storage.getStore()?.fn ?? 'unknown' }),
    within: (fn, work) => storage.run({ fn }, work),
  };
}

/** What a runtime needs to record its calls per function (the dev server's `recorder` option). */
export interface CallRecorder {
  /** For the clients: `recordCall` in their AwsConnection, or `recordCalls(client, recordCall)`. */
  recordCall: RecordCall;
  /** Runs one function's invocation: every call it leads to is that function's. */
  within<T>(fn: string, work: () => T): T;
}
