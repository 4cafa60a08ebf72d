import {
  DescribeInstanceInformationCommand,
  GetCommandInvocationCommand,
  ListCommandsCommand,
  SendCommandCommand,
  type SSMClient,
} from '@aws-sdk/client-ssm';
import { type DynamoDBDocumentClient, GetCommand, PutCommand } from '@aws-sdk/lib-dynamodb';
import {
  type Fleet,
  type HostCommand,
  type HostInvocation,
  type InvocationStatus,
  renderHostScript,
  type Targets,
} from '@slipway/core';
import { translateSdkError } from './errors.ts';
import { keys } from './table.ts';

/** SSM takes at most 50 instance ids in one SendCommand. */
export const SSM_MAX_INSTANCES = 50;
const TERMINAL: Record<string, InvocationStatus> = {
  Success: 'success',
  Failed: 'failed',
  TimedOut: 'timed_out',
  Cancelled: 'interrupted',
};
const OUTPUT_LIMIT = 64 * 1024;

export interface SsmFleetOptions {
  ssm: SSMClient;
  documents: DynamoDBDocumentClient;
  tableName: string;
  /** Full output goes here as well (SSM keeps only the first 24,000 characters inline). */
  outputBucket?: string;
  clock?: () => Date;
}

interface CommandParts {
  /** SSM CommandId of each part (up to 50 hosts each), in host order. */
  parts: { index: number; ssmCommandId: string; hosts: string[] }[];
}

const partsKey = (commandId: string) => ({ pk: `CMDPARTS#${commandId}`, sk: 'PARTS' });
const commentOf = (commandId: string, index: number) => `slipway ${commandId} part ${index}`;

/**
 * The fleet on AWS: SSM Run Command (AWS-RunShellScript) to instance ids, 50 at a time. SendCommand
 * has no idempotency token, so each part's CommandId is recorded before anything else happens, and a
 * retry first looks for a part already sent (by its Comment) instead of sending it again. Each SSM
 * CommandId is also filed as a command of the step, so the "EC2 Command Status-change Notification"
 * for any part finds its step.
 */
export function createSsmFleet(options: SsmFleetOptions): Fleet {
  const { ssm, documents, tableName } = options;
  const clock = options.clock ?? (() => new Date());

  async function readParts(commandId: string): Promise<CommandParts> {
    const result = await documents.send(new GetCommand({ TableName: tableName, Key: partsKey(commandId), ConsistentRead: true }));
    return { parts: ((result.Item?.parts ?? []) as CommandParts['parts']) };
  }

  async function recordPart(commandId: string, part: CommandParts['parts'][number], all: CommandParts) {
    all.parts = [...all.parts.filter((p) => p.index !== part.index), part].sort((a, b) => a.index - b.index);
    await documents.send(new PutCommand({ TableName: tableName, Item: { ...partsKey(commandId), parts: all.parts } }));
    // The status event names the SSM CommandId: file it where the step's own command id is filed.
    const lookup = await documents.send(new GetCommand({ TableName: tableName, Key: keys.command(commandId), ConsistentRead: true }));
    if (lookup.Item) {
      await documents.send(
        new PutCommand({
          TableName: tableName,
          Item: { ...keys.command(part.ssmCommandId), releaseId: lookup.Item.releaseId, key: lookup.Item.key },
        }),
      );
    }
  }

  /** A part sent before a crash, found by its Comment among recent shell commands. */
  async function findSent(commandId: string, index: number): Promise<string | undefined> {
    const since = new Date(clock().getTime() - 24 * 3600 * 1000).toISOString();
    let nextToken: string | undefined;
    do {
      const page = await ssm.send(
        new ListCommandsCommand({
          Filters: [
            { key: 'InvokedAfter', value: since },
            { key: 'DocumentName', value: 'AWS-RunShellScript' },
          ],
          MaxResults: 50,
          NextToken: nextToken,
        }),
      );
      const found = page.Commands?.find((command) => command.Comment === commentOf(commandId, index));
      if (found?.CommandId) return found.CommandId;
      nextToken = page.NextToken;
    } while (nextToken);
    return undefined;
  }

  async function invocation(ssmCommandId: string, host: string): Promise<HostInvocation | undefined> {
    try {
      const result = await ssm.send(new GetCommandInvocationCommand({ CommandId: ssmCommandId, InstanceId: host }));
      const status = TERMINAL[result.Status ?? ''];
      if (!status) return undefined;
      const end = result.ExecutionEndDateTime || clock().toISOString();
      return {
        host,
        status,
        exitCode: result.ResponseCode === undefined || result.ResponseCode < 0 ? null : result.ResponseCode,
        stdout: (result.StandardOutputContent ?? '').slice(-OUTPUT_LIMIT),
        stderr: (result.StandardErrorContent ?? result.StatusDetails ?? '').slice(-OUTPUT_LIMIT),
        startedAt: result.ExecutionStartDateTime || end,
        endedAt: end,
      };
    } catch (error) {
      // Right after SendCommand an invocation may not exist yet: it is simply not finished.
      if (error instanceof Error && error.name === 'InvocationDoesNotExist') return undefined;
      throw translateSdkError(error, 'SSM (get command invocation)');
    }
  }

  return {
    async resolveTargets(targets: Targets) {
      if ('hosts' in targets) return [...targets.hosts];
      const hosts: string[] = [];
      let nextToken: string | undefined;
      do {
        const page = await ssm
          .send(
            new DescribeInstanceInformationCommand({
              Filters: Object.entries(targets.tags).map(([key, value]) => ({ Key: `tag:${key}`, Values: [value] })),
              MaxResults: 50,
              NextToken: nextToken,
            }),
          )
          .catch((error: unknown) => {
            throw translateSdkError(error, 'SSM (describe instances)');
          });
        for (const instance of page.InstanceInformationList ?? []) if (instance.InstanceId) hosts.push(instance.InstanceId);
        nextToken = page.NextToken;
      } while (nextToken);
      return hosts.sort();
    },

    async send(command: HostCommand) {
      const script = renderHostScript(command.script);
      const recorded = await readParts(command.commandId);
      for (let index = 0; index * SSM_MAX_INSTANCES < command.hosts.length; index++) {
        if (recorded.parts.some((p) => p.index === index)) continue;
        const hosts = command.hosts.slice(index * SSM_MAX_INSTANCES, (index + 1) * SSM_MAX_INSTANCES);
        let ssmCommandId = await findSent(command.commandId, index);
        if (!ssmCommandId) {
          const sent = await ssm
            .send(
              new SendCommandCommand({
                DocumentName: 'AWS-RunShellScript',
                InstanceIds: hosts,
                Comment: commentOf(command.commandId, index),
                Parameters: { commands: [script], executionTimeout: [String(command.timeoutSeconds)] },
                // A batch is already the size the strategy asked for: all of it at once, and every
                // host's outcome reported, failed or not.
                MaxConcurrency: '100%',
                MaxErrors: '100%',
                TimeoutSeconds: 600,
                ...(options.outputBucket ? { OutputS3BucketName: options.outputBucket, OutputS3KeyPrefix: `command-output/${command.commandId}` } : {}),
              }),
            )
            .catch((error: unknown) => {
              throw translateSdkError(error, 'SSM (send command)');
            });
          ssmCommandId = sent.Command?.CommandId;
          if (!ssmCommandId) throw new Error('SSM accepted the command but returned no CommandId');
        }
        await recordPart(command.commandId, { index, ssmCommandId, hosts }, recorded);
      }
    },

    async results(commandId: string) {
      const { parts } = await readParts(commandId);
      const invocations: HostInvocation[] = [];
      let finished = parts.length > 0;
      for (const part of parts) {
        for (const host of part.hosts) {
          const outcome = await invocation(part.ssmCommandId, host);
          if (outcome) invocations.push(outcome);
          else finished = false;
        }
      }
      return { finished, invocations };
    },
  };
}
