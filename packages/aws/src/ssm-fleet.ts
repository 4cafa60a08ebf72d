import { type CloudWatchLogsClient, GetLogEventsCommand } from '@aws-sdk/client-cloudwatch-logs';
import { GetObjectCommand, type S3Client } from '@aws-sdk/client-s3';
import {
  type CommandInvocation,
  DescribeInstanceInformationCommand,
  type DescribeInstanceInformationCommandInput,
  GetCommandInvocationCommand,
  type InstanceInformation,
  ListCommandInvocationsCommand,
  ListCommandsCommand,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { DeleteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  type Fleet,
  forEachLimited,
  type HostCommand,
  type HostInvocation,
  type HostOutputLine,
  type HostOutputRead,
  type InvocationStatus,
  renderHostScript,
  type ResolvedTargets,
  type Targets,
  UnprocessableError,
  type UnreachableHost,
} from '@slipway/core';
import { putIfAbsent, translateSdkError } from './errors.ts';
import { keys } from './table.ts';
import { epochSeconds, TTL_DAYS } from './ttl.ts';

/** SSM takes at most 50 instance ids in one SendCommand. */
export const SSM_MAX_INSTANCES = 50;
/** The most ListCommandInvocations, ListCommands and DescribeInstanceInformation answer in one page. */
const PAGE_SIZE = 50;
/** SSM calls in flight at once for one command (parts sent, parts listed, ids described). */
const CALLS_IN_FLIGHT = 4;
/** Failed hosts per command whose whole output is read (S3, or GetCommandInvocation); the rest keep SSM's summary. */
const DETAILED_FAILURES = 10;
/** Each stream of a host's output is kept to its last 64 KiB, as on the local fleet: the end is where errors are. */
const OUTPUT_LIMIT_BYTES = 64 * 1024;
/**
 * Where a part with a recorded intent but no CommandId is looked for: commands invoked from a little
 * before the intent to well after it (a send retried by the SDK, a slow answer), at most this many
 * pages of them. Bounded: no stage pages through the account's command history.
 */
const FIND_WINDOW_MS = { before: 5 * 60_000, after: 15 * 60_000 };
const FIND_MAX_PAGES = 10;
const TERMINAL: Record<string, InvocationStatus> = {
  Success: 'success',
  Failed: 'failed',
  TimedOut: 'timed_out',
  Cancelled: 'interrupted',
};
/** How aws:runShellScript separates stderr from stdout in a plugin's `Output`. */
const ERROR_SEPARATOR = /\n?-{10}ERROR-{7}\n?/;
const PLUGIN_FOLDER = 'awsrunShellScript/0.awsrunShellScript';

export interface SsmFleetOptions {
  ssm: SSMClient;
  documents: DynamoDBDocumentClient;
  tableName: string;
  /**
   * Hosts write each command's whole output here (SendCommand's OutputS3BucketName, under
   * `command-output/`): SSM's own API returns only its start.
   */
  outputBucket?: string;
  /**
   * Reads a failed host's output tail from `outputBucket` (s3:GetObject on `command-output/*`).
   * Without it, a failed host's output is GetCommandInvocation's: the first 24,000 characters of
   * stdout and 8,000 of stderr.
   */
  s3?: S3Client;
  clock?: () => Date;
  /**
   * Hosts also stream each command's output to this CloudWatch Logs group as it runs
   * (SendCommand's CloudWatchOutputConfig), and `readOutput` follows it with `logs` (GetLogEvents).
   * Without both, the fleet has no live output and a host's output is known when its step ends.
   */
  outputLogGroup?: string;
  logs?: CloudWatchLogsClient;
}

/** A live read's position in a host's two log streams: each a GetLogEvents token and the lines of its page already read. */
interface LogPosition {
  o?: string;
  os?: number;
  e?: string;
  es?: number;
}

const encodePosition = (position: LogPosition) => Buffer.from(JSON.stringify(position), 'utf8').toString('base64url');

function decodePosition(text: string | undefined): LogPosition {
  if (!text) return {};
  try {
    const parsed = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as LogPosition;
    return typeof parsed === 'object' && parsed !== null ? parsed : {};
  } catch {
    return {};
  }
}

/**
 * How often a live reader looks at CloudWatch Logs again: GetLogEvents allows 25 calls a second per
 * account and region, and each look is two (stdout, stderr).
 */
const LIVE_OUTPUT_POLL_MS = 2000;
/** How many pages one live read follows in one stream (GetLogEvents may answer an empty page before the end). */
const LOG_PAGES_PER_READ = 3;
/** The log stream SSM writes a host's stdout or stderr to, under the group CloudWatchOutputConfig names. */
export const logStreamOf = (ssmCommandId: string, host: string, stream: 'stdout' | 'stderr') =>
  `${ssmCommandId}/${host}/aws-runShellScript/${stream}`;

/** One SendCommand of a command: up to 50 hosts. Recorded as an intent before it is sent. */
interface Part {
  index: number;
  hosts: string[];
  /** When the intent was recorded; absent on parts recorded before intents existed. */
  sendingSince?: string;
  /** SSM's CommandId, once SendCommand answered. */
  ssmCommandId?: string;
  /** Every host of the part was seen with an outcome: a later look skips it until the end. */
  done?: boolean;
}

interface CommandRecord {
  /** How many parts the command has; absent only for commands recorded before this was kept. */
  partCount?: number;
  parts: Map<number, Part>;
}

/**
 * DynamoDB items of a command's parts, all under `CMDPARTS#<commandId>`: `HEAD` (how many parts),
 * `PART#<index>` (one per SendCommand). Commands recorded by an earlier version have one `PARTS`
 * item holding every part; they are still read.
 */
const partsPk = (commandId: string) => `CMDPARTS#${commandId}`;
const headKey = (commandId: string) => ({ pk: partsPk(commandId), sk: 'HEAD' });
const partKey = (commandId: string, index: number) => ({ pk: partsPk(commandId), sk: `PART#${String(index).padStart(5, '0')}` });
const commentOf = (commandId: string, index: number) => `slipway ${commandId} part ${index}`;
const outputPrefix = (commandId: string) => `command-output/${commandId}`;
const ssmTime = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function chunk<T>(items: readonly T[], size: number): T[][] {
  const chunks: T[][] = [];
  for (let i = 0; i < items.length; i += size) chunks.push(items.slice(i, i + size));
  return chunks;
}

function isoOf(value: Date | string | undefined): string | undefined {
  if (value === undefined || value === '') return undefined;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? undefined : date.toISOString();
}

/** The service answered and refused (throttled, invalid): nothing was sent. A 5xx or no answer may have sent it. */
function refusedForSure(error: unknown): boolean {
  const status = (error as { $metadata?: { httpStatusCode?: number } } | undefined)?.$metadata?.httpStatusCode ?? 0;
  return status >= 400 && status < 500;
}

function unreachableReason(instance: InstanceInformation | undefined): string | undefined {
  if (!instance) return 'not managed by SSM';
  return instance.PingStatus === 'Online' ? undefined : `SSM PingStatus ${instance.PingStatus ?? 'unknown'}`;
}

/** Why SSH targets are refused on AWS: the stage Lambdas hold no SSH key and reach hosts through SSM. */
export const SSH_TARGETS_ON_AWS =
  'SSH targets are not supported on AWS, where Slipway reaches hosts through SSM Run Command: use {"hosts": [instance ids]} or {"tags": {...}}, or run these environments from the local server';

/**
 * The fleet on AWS: SSM Run Command (AWS-RunShellScript) to instance ids, 50 at a time.
 *
 * Sending: SendCommand has no idempotency token. Each part is first recorded as an intent; once SSM
 * answers, its CommandId is filed (under the part, and as a command of the step, so the
 * "EC2 Command Status-change Notification" for any part finds its step). A send that finds an intent
 * without a CommandId (the earlier attempt stopped between SendCommand and recording) looks for it
 * by its Comment among the shell commands invoked around the intent's time, a bounded number of
 * pages; in the ordinary case no listing happens at all.
 *
 * Results: one ListCommandInvocations with details per page of 50 hosts (never a call per host).
 * Parts seen finished are marked, so each status event looks only at the parts still running; once
 * every part finished, all are listed once more for the outcome. SSM's listing gives each host the
 * first 2,500 characters of its output; for the first failed hosts, the whole output's tail is read
 * from the output bucket (or, without one, GetCommandInvocation's 24,000/8,000 characters).
 */
export function createSsmFleet(options: SsmFleetOptions): Fleet {
  const { ssm, documents, tableName } = options;
  const clock = options.clock ?? (() => new Date());

  async function dynamo<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw translateSdkError(error, `the release table (${what})`);
    }
  }

  async function ssmCall<T>(what: string, run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw translateSdkError(error, `SSM (${what})`);
    }
  }

  async function readCommand(commandId: string): Promise<CommandRecord> {
    const record: CommandRecord = { parts: new Map() };
    let start: Record<string, unknown> | undefined;
    do {
      const page = await dynamo('read command parts', () =>
        documents.send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'pk = :pk',
            ExpressionAttributeValues: { ':pk': partsPk(commandId) },
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        ),
      );
      for (const item of page.Items ?? []) {
        if (item.sk === 'HEAD') record.partCount = Number(item.partCount);
        else if (item.sk === 'PARTS') for (const part of item.parts as Part[]) record.parts.set(part.index, part);
        else record.parts.set(Number(item.index), item as Part);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    // An earlier version's record: its parts are all there, since each was recorded once sent.
    if (record.partCount === undefined && record.parts.size > 0) record.partCount = record.parts.size;
    return record;
  }

  async function readPart(commandId: string, index: number): Promise<Part | undefined> {
    const result = await dynamo('read command part', () =>
      documents.send(new GetCommand({ TableName: tableName, Key: partKey(commandId, index), ConsistentRead: true })),
    );
    return result.Item as Part | undefined;
  }

  /** A part sent before a crash, found by its Comment among shell commands invoked around its intent. */
  async function findSent(commandId: string, part: Part): Promise<string | undefined> {
    const since = Date.parse(part.sendingSince ?? '');
    if (Number.isNaN(since)) return undefined;
    let nextToken: string | undefined;
    for (let page = 0; page < FIND_MAX_PAGES; page++) {
      const listed = await ssmCall('list commands', () =>
        ssm.send(
          new ListCommandsCommand({
            Filters: [
              { key: 'InvokedAfter', value: ssmTime(since - FIND_WINDOW_MS.before) },
              { key: 'InvokedBefore', value: ssmTime(since + FIND_WINDOW_MS.after) },
              { key: 'DocumentName', value: 'AWS-RunShellScript' },
            ],
            MaxResults: PAGE_SIZE,
            NextToken: nextToken,
          }),
        ),
      );
      const found = listed.Commands?.find((command) => command.Comment === commentOf(commandId, part.index));
      if (found?.CommandId) return found.CommandId;
      nextToken = listed.NextToken;
      if (!nextToken) return undefined;
    }
    const busy = `more than ${FIND_MAX_PAGES * PAGE_SIZE} shell commands were sent around ${part.sendingSince}`;
    const look = `look for the Comment "${commentOf(commandId, part.index)}" in Run Command's history`;
    throw new UnprocessableError(`cannot tell whether part ${part.index} of command ${commandId} reached SSM: ${busy}; ${look}`);
  }

  async function sendCommand(command: HostCommand, script: string, part: Part): Promise<string> {
    let sent;
    try {
      sent = await ssm.send(
        new SendCommandCommand({
          DocumentName: 'AWS-RunShellScript',
          InstanceIds: part.hosts,
          Comment: commentOf(command.commandId, part.index),
          Parameters: { commands: [script], executionTimeout: [String(command.timeoutSeconds)] },
          // A batch is already the size the strategy asked for: all of it at once, and every host's
          // outcome reported, failed or not.
          MaxConcurrency: '100%',
          MaxErrors: '100%',
          TimeoutSeconds: 600,
          ...(options.outputBucket ? { OutputS3BucketName: options.outputBucket, OutputS3KeyPrefix: outputPrefix(command.commandId) } : {}),
          ...(options.outputLogGroup
            ? { CloudWatchOutputConfig: { CloudWatchOutputEnabled: true, CloudWatchLogGroupName: options.outputLogGroup } }
            : {}),
        }),
      );
    } catch (error) {
      // Refused for sure: the intent goes, so the next attempt sends at once instead of looking.
      if (refusedForSure(error)) {
        await dynamo('drop command part', () =>
          documents.send(
            new DeleteCommand({ TableName: tableName, Key: partKey(command.commandId, part.index), ConditionExpression: 'attribute_not_exists(ssmCommandId)' }),
          ),
        ).catch(() => undefined);
      }
      throw translateSdkError(error, 'SSM (send command)');
    }
    const ssmCommandId = sent.Command?.CommandId;
    if (!ssmCommandId) throw new Error('SSM accepted the command but returned no CommandId');
    return ssmCommandId;
  }

  /** The part's SSM CommandId: the one recorded, the one found after a crash, or a new send. */
  async function sendPart(command: HostCommand, script: string, hosts: string[], index: number, recorded?: Part): Promise<string> {
    let part = recorded;
    if (part?.ssmCommandId) return part.ssmCommandId;
    if (!part) {
      const intent: Part = { index, hosts, sendingSince: clock().toISOString() };
      const item = { ...partKey(command.commandId, index), ...intent, ttl: epochSeconds(intent.sendingSince!, TTL_DAYS.commandParts) };
      if (await putIfAbsent(documents, tableName, item, 'the release table (record command part)')) {
        return sendCommand(command, script, intent);
      }
      // Another attempt recorded it meanwhile.
      part = (await readPart(command.commandId, index)) ?? intent;
      if (part.ssmCommandId) return part.ssmCommandId;
    }
    return (await findSent(command.commandId, part)) ?? (await sendCommand(command, script, part));
  }

  /** The ListCommandInvocations pages of one part, with details: one request per page. */
  async function listPart(part: Part): Promise<Map<string, CommandInvocation>> {
    const found = new Map<string, CommandInvocation>();
    let nextToken: string | undefined;
    do {
      const page = await ssmCall('list command invocations', () =>
        ssm.send(
          new ListCommandInvocationsCommand({ CommandId: part.ssmCommandId, Details: true, MaxResults: PAGE_SIZE, NextToken: nextToken }),
        ),
      );
      for (const invocation of page.CommandInvocations ?? []) if (invocation.InstanceId) found.set(invocation.InstanceId, invocation);
      nextToken = page.NextToken;
    } while (nextToken);
    return found;
  }

  const ended = (part: Part, listed: Map<string, CommandInvocation>) => part.hosts.every((host) => TERMINAL[listed.get(host)?.Status ?? '']);

  async function markDone(commandId: string, part: Part) {
    if (part.sendingSince === undefined) return; // an earlier version's record: nothing to mark
    const update = { TableName: tableName, Key: partKey(commandId, part.index), UpdateExpression: 'SET done = :done', ExpressionAttributeValues: { ':done': true } };
    await dynamo('mark command part done', () => documents.send(new UpdateCommand(update)));
  }

  function toHostInvocation(invocation: CommandInvocation): HostInvocation | undefined {
    const status = TERMINAL[invocation.Status ?? ''];
    if (!status || !invocation.InstanceId) return undefined;
    const plugin = invocation.CommandPlugins?.[0];
    const [stdout = '', ...errors] = (plugin?.Output ?? '').split(ERROR_SEPARATOR);
    const stderr = errors.join('\n');
    const end = isoOf(plugin?.ResponseFinishDateTime) ?? clock().toISOString();
    return {
      host: invocation.InstanceId,
      status,
      exitCode: plugin?.ResponseCode === undefined || plugin.ResponseCode < 0 ? null : plugin.ResponseCode,
      stdout,
      // An undelivered command has no output at all: its status details say why ("DeliveryTimedOut").
      stderr: stderr || (status === 'success' ? '' : (invocation.StatusDetails ?? '')),
      startedAt: isoOf(plugin?.ResponseStartDateTime) ?? isoOf(invocation.RequestedDateTime) ?? end,
      endedAt: end,
    };
  }

  /**
   * The S3 key of one stream of a host's output. First the URL SSM hands out with the invocation
   * (CommandPlugin.StandardOutputUrl / StandardErrorUrl: "the URL for the complete text written by
   * the plugin to stdout/stderr in Amazon S3", SSM API reference,
   * https://docs.aws.amazon.com/systems-manager/latest/APIReference/API_CommandPlugin.html); only a
   * key in our own bucket under our command's prefix is read. Without one, the layout Run Command
   * writes: the reference shows `bucket/<OutputS3KeyPrefix>/<instance id>/awsrunShellScript` (same
   * page, OutputS3KeyPrefix), with the CommandId between our prefix and the instance id, and
   * AWS-RunShellScript's single step writing `0.awsrunShellScript/stdout` and `/stderr` in that
   * folder (as Run Command writes them; the reference does not spell out this last part).
   */
  function outputKey(url: string | undefined, commandId: string, ssmCommandId: string, host: string, stream: 'stdout' | 'stderr'): string {
    const bucket = options.outputBucket!;
    if (url) {
      try {
        const parsed = new URL(url);
        const path = parsed.pathname.split('/').map(decodeURIComponent).join('/').replace(/^\//, '');
        const key = parsed.hostname.startsWith(`${bucket}.`) ? path : path.startsWith(`${bucket}/`) ? path.slice(bucket.length + 1) : undefined;
        if (key?.startsWith(`${outputPrefix(commandId)}/`)) return key;
      } catch {
        // Not a URL: the layout below.
      }
    }
    return `${outputPrefix(commandId)}/${ssmCommandId}/${host}/${PLUGIN_FOLDER}/${stream}`;
  }

  /** The last 64 KiB of an output stream in S3; '' when the host wrote nothing to it. */
  async function tailOf(s3: S3Client, key: string): Promise<string> {
    const read = (range: string) => s3.send(new GetObjectCommand({ Bucket: options.outputBucket, Key: key, Range: range }));
    try {
      let object = await read(`bytes=-${OUTPUT_LIMIT_BYTES}`);
      let range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(object.ContentRange ?? '')?.slice(1).map(Number);
      // A server that reads the suffix range as a prefix (the local S3 stand-in does) is asked again, exactly.
      if (range && range[1]! < range[2]! - 1) {
        await object.Body?.transformToString();
        object = await read(`bytes=${Math.max(0, range[2]! - OUTPUT_LIMIT_BYTES)}-${range[2]! - 1}`);
        range = /^bytes (\d+)-(\d+)\/(\d+)$/.exec(object.ContentRange ?? '')?.slice(1).map(Number);
      }
      const text = (await object.Body?.transformToString('utf8')) ?? '';
      const cut = range?.[0] ?? 0;
      return cut > 0 ? `[${cut} earlier bytes cut]\n${text}` : text;
    } catch (error) {
      const name = error instanceof Error ? error.name : '';
      if (name === 'NoSuchKey' || name === 'NotFound') return '';
      // An empty object cannot satisfy a suffix range.
      if (name === 'InvalidRange') return '';
      throw error;
    }
  }

  /** A failed host's whole output: its tail from S3 when the command wrote there, else GetCommandInvocation's. */
  async function completeOutput(commandId: string, ssmCommandId: string, invocation: CommandInvocation, host: HostInvocation) {
    const plugin = invocation.CommandPlugins?.[0];
    const s3 = options.s3;
    const bucket = plugin?.OutputS3BucketName;
    if (s3 && options.outputBucket && (bucket === undefined || bucket === options.outputBucket)) {
      try {
        const [stdout, stderr] = await Promise.all([
          tailOf(s3, outputKey(plugin?.StandardOutputUrl, commandId, ssmCommandId, host.host, 'stdout')),
          tailOf(s3, outputKey(plugin?.StandardErrorUrl, commandId, ssmCommandId, host.host, 'stderr')),
        ]);
        if (stdout || stderr) {
          host.stdout = stdout;
          host.stderr = stderr || host.stderr;
          return;
        }
      } catch {
        // Unreadable (a missing grant, say): SSM's own copy of the output's start below.
      }
    }
    try {
      const result = await ssm.send(new GetCommandInvocationCommand({ CommandId: ssmCommandId, InstanceId: host.host }));
      host.stdout = (result.StandardOutputContent ?? '').slice(-OUTPUT_LIMIT_BYTES) || host.stdout;
      // An empty StandardErrorContent ("") says nothing: the status details say why it failed.
      host.stderr = (result.StandardErrorContent || host.stderr || result.StatusDetails || '').slice(-OUTPUT_LIMIT_BYTES);
    } catch (error) {
      if (error instanceof Error && error.name === 'InvocationDoesNotExist') return;
      throw translateSdkError(error, 'SSM (get command invocation)');
    }
  }

  /** Which SSM command reached `host`: its part's CommandId, kept once known (it never changes). */
  const sentTo = new Map<string, string>();
  async function ssmCommandFor(commandId: string, host: string): Promise<string | undefined> {
    const key = `${commandId}/${host}`;
    if (!sentTo.has(key)) {
      const { parts } = await readCommand(commandId);
      for (const part of parts.values()) {
        if (part.ssmCommandId && part.hosts.includes(host)) sentTo.set(key, part.ssmCommandId);
      }
    }
    return sentTo.get(key);
  }

  /**
   * New lines of one log stream from `token` (skipping the `skip` lines of that page already read),
   * each with the place after it. A stream not there yet (the host has not printed) reads as empty.
   */
  async function readLogStream(logStreamName: string, token: string | undefined, skip: number) {
    const lines: { text: string; token: string | undefined; skip: number }[] = [];
    let at = { token, skip };
    for (let page = 0; page < LOG_PAGES_PER_READ; page++) {
      let answer;
      try {
        answer = await options.logs!.send(
          new GetLogEventsCommand({
            logGroupName: options.outputLogGroup,
            logStreamName,
            startFromHead: true,
            ...(at.token ? { nextToken: at.token } : {}),
          }),
        );
      } catch (error) {
        if ((error as { name?: string }).name === 'ResourceNotFoundException') break;
        throw translateSdkError(error, 'CloudWatch Logs (read command output)');
      }
      const texts = (answer.events ?? []).flatMap((event) => (event.message ?? '').replace(/\n$/, '').split('\n'));
      texts.slice(at.skip).forEach((text, i) => lines.push({ text, token: at.token, skip: at.skip + i + 1 }));
      const next = answer.nextForwardToken;
      // The same token back: the end of the stream for now; the lines of this page stay counted.
      if (!next || next === at.token) {
        at = { token: at.token, skip: Math.max(at.skip, texts.length) };
        break;
      }
      at = { token: next, skip: 0 };
    }
    return { lines, at };
  }

  /**
   * What the host printed so far, followed in CloudWatch Logs. SSM sends output there in batches
   * as the command runs (a few seconds behind the host). Whether the run is over is the step's to
   * say (settled once every host ended): this never says `ended` itself.
   */
  async function readOutput(commandId: string, host: string, from: string | undefined): Promise<HostOutputRead> {
    const position = decodePosition(from);
    const ssmCommandId = await ssmCommandFor(commandId, host);
    if (!ssmCommandId) return { lines: [], next: encodePosition(position), ended: false };
    const out = await readLogStream(logStreamOf(ssmCommandId, host, 'stdout'), position.o, position.os ?? 0);
    const err = await readLogStream(logStreamOf(ssmCommandId, host, 'stderr'), position.e, position.es ?? 0);
    const errFrom = { e: position.e, es: position.es ?? 0 };
    const outAt = { o: out.at.token, os: out.at.skip };
    const lines: HostOutputLine[] = [
      ...out.lines.map((line) => ({ stream: 'stdout' as const, text: line.text, position: encodePosition({ o: line.token, os: line.skip, ...errFrom }) })),
      ...err.lines.map((line) => ({ stream: 'stderr' as const, text: line.text, position: encodePosition({ ...outAt, e: line.token, es: line.skip }) })),
    ];
    return { lines, next: encodePosition({ ...outAt, e: err.at.token, es: err.at.skip }), ended: false };
  }

  async function describeInstances(input: DescribeInstanceInformationCommandInput): Promise<InstanceInformation[]> {
    const found: InstanceInformation[] = [];
    let nextToken: string | undefined;
    do {
      const page = await ssmCall('describe instances', () =>
        ssm.send(new DescribeInstanceInformationCommand({ ...input, MaxResults: PAGE_SIZE, NextToken: nextToken })),
      );
      found.push(...(page.InstanceInformationList ?? []));
      nextToken = page.NextToken;
    } while (nextToken);
    return found;
  }

  return {
    /**
     * The hosts SSM can reach now (PingStatus Online); any other host the targets name is returned
     * as unreachable, with why, for Prepare to refuse the plan. Named hosts keep their order.
     */
    async resolveTargets(targets: Targets): Promise<ResolvedTargets> {
      const hosts: string[] = [];
      const unreachable: UnreachableHost[] = [];
      if ('hosts' in targets) {
        const known = new Map<string, InstanceInformation>();
        await forEachLimited(chunk(targets.hosts, PAGE_SIZE), CALLS_IN_FLIGHT, async (ids) => {
          for (const instance of await describeInstances({ Filters: [{ Key: 'InstanceIds', Values: ids }] })) {
            if (instance.InstanceId) known.set(instance.InstanceId, instance);
          }
        });
        for (const host of targets.hosts) {
          const reason = unreachableReason(known.get(host));
          if (reason) unreachable.push({ host, reason });
          else hosts.push(host);
        }
        return { hosts, unreachable };
      }
      if ('ssh' in targets) {
        // Refused when the config is applied (see SSH_TARGETS_ON_AWS); a config stored before is refused here, before anything is sent.
        return { hosts: [], unreachable: targets.ssh.hosts.map((host) => ({ host, reason: SSH_TARGETS_ON_AWS })) };
      }
      const tagged = await describeInstances({ Filters: Object.entries(targets.tags).map(([key, value]) => ({ Key: `tag:${key}`, Values: [value] })) });
      for (const instance of tagged) {
        if (!instance.InstanceId) continue;
        const reason = unreachableReason(instance);
        if (reason) unreachable.push({ host: instance.InstanceId, reason });
        else hosts.push(instance.InstanceId);
      }
      return { hosts: hosts.sort(), unreachable: unreachable.sort((a, b) => a.host.localeCompare(b.host)) };
    },

    async send(command: HostCommand) {
      const script = renderHostScript(command.script);
      const parts = chunk(command.hosts, SSM_MAX_INSTANCES);
      // How many parts there are is known before any is sent: results never settle on a part of them.
      const createdAt = clock().toISOString();
      const ttl = epochSeconds(createdAt, TTL_DAYS.commandParts);
      await putIfAbsent(
        documents,
        tableName,
        { ...headKey(command.commandId), partCount: parts.length, hostCount: command.hosts.length, createdAt, ttl },
        'the release table (record command)',
      );
      const recorded = await readCommand(command.commandId);
      const lookup = await dynamo('read command lookup', () =>
        documents.send(new GetCommand({ TableName: tableName, Key: keys.command(command.commandId), ConsistentRead: true })),
      );
      await forEachLimited(
        parts.map((hosts, index) => ({ hosts, index })),
        CALLS_IN_FLIGHT,
        async ({ hosts, index }) => {
          const recordedPart = recorded.parts.get(index);
          if (recordedPart?.ssmCommandId) return;
          const ssmCommandId = await sendPart(command, script, hosts, index, recordedPart);
          // The status event names the SSM CommandId: file it where the step's own command id is
          // filed, before the part says it was sent.
          const step = lookup.Item;
          if (step) {
            const filed = { ...keys.command(ssmCommandId), releaseId: step.releaseId, key: step.key, ttl };
            await dynamo('file command', () => documents.send(new PutCommand({ TableName: tableName, Item: filed })));
          }
          await dynamo('record command part', () =>
            documents.send(
              new UpdateCommand({
                TableName: tableName,
                Key: partKey(command.commandId, index),
                UpdateExpression: 'SET ssmCommandId = :id, #index = :index, hosts = :hosts',
                ExpressionAttributeNames: { '#index': 'index' },
                ExpressionAttributeValues: { ':id': ssmCommandId, ':index': index, ':hosts': hosts },
              }),
            ),
          );
        },
      );
    },

    ...(options.logs && options.outputLogGroup ? { readOutput, outputPollMs: LIVE_OUTPUT_POLL_MS } : {}),

    async results(commandId: string) {
      const { partCount = 0, parts } = await readCommand(commandId);
      const ordered = Array.from({ length: partCount }, (_, index) => parts.get(index));
      const sent = ordered.filter((part): part is Part & { ssmCommandId: string } => part?.ssmCommandId !== undefined);
      if (partCount === 0 || sent.length < partCount) return { finished: false, invocations: [] };

      const listed = new Map<number, Map<string, CommandInvocation>>();
      const outcomes = () =>
        sent.flatMap((part) => part.hosts.flatMap((host) => {
          const invocation = listed.get(part.index)?.get(host);
          const outcome = invocation && toHostInvocation(invocation);
          return outcome ? [outcome] : [];
        }));
      // The parts not yet seen finished, in order, up to the first one still running.
      for (const part of sent) {
        if (part.done) continue;
        const invocations = await listPart(part);
        listed.set(part.index, invocations);
        if (!ended(part, invocations)) return { finished: false, invocations: outcomes() };
        await markDone(commandId, part);
      }
      // Every part finished: the ones seen finished before are listed again, for their outcomes.
      await forEachLimited(
        sent.filter((part) => !listed.has(part.index)),
        CALLS_IN_FLIGHT,
        async (part) => {
          listed.set(part.index, await listPart(part));
        },
      );
      if (!sent.every((part) => ended(part, listed.get(part.index)!))) return { finished: false, invocations: outcomes() };

      const invocations = outcomes();
      const failed = invocations.filter((invocation) => invocation.status !== 'success').slice(0, DETAILED_FAILURES);
      const partOf = new Map(sent.flatMap((part) => part.hosts.map((host) => [host, part] as const)));
      await forEachLimited(failed, CALLS_IN_FLIGHT, async (host) => {
        const part = partOf.get(host.host)!;
        await completeOutput(commandId, part.ssmCommandId, listed.get(part.index)!.get(host.host)!, host);
      });
      return { finished: true, invocations };
    },
  };
}
