import { randomBytes } from 'node:crypto';
import { BatchWriteCommand, type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  ConfigurationError,
  type IdGenerator,
  type Logger,
  type ReleaseExecutionInput,
  StaleTaskTokenError,
  type Workflow,
} from '@slipway/core';

import {
  AbortedError,
  asStatesError,
  type CallbackWaiter,
  type Definition,
  type FrameResult,
  interpret,
  type Json,
  StatesError,
  type Position,
  type TraceEvent,
  validateDefinition,
} from './asl/interpreter.ts';

/** A function the state machine may call, as Lambda would: an event in, a result out. */
export type LocalFunction = (payload: Record<string, unknown>) => Promise<unknown>;

export const LOCAL_FUNCTION_ARN_PREFIX = 'arn:aws:lambda:us-east-1:000000000000:function:slipway-';
const HISTORY_VALUE_LIMIT = 4096;

/** Fills `${NameFunctionArn}` placeholders with the local ARN of each function, as the deploy does on AWS. */
export function renderDefinition(text: string): Definition {
  return JSON.parse(text.replace(/\$\{(\w+)FunctionArn\}/g, (_, name: string) => `${LOCAL_FUNCTION_ARN_PREFIX}${name}`));
}

export function functionNameOf(arn: string): string {
  if (!arn.startsWith(LOCAL_FUNCTION_ARN_PREFIX)) throw new ConfigurationError(`${arn} is not a local Slipway function`);
  return arn.slice(LOCAL_FUNCTION_ARN_PREFIX.length);
}

function tasksOf(definition: Definition, found: [string, Definition['States'][string]][] = []) {
  for (const [name, state] of Object.entries(definition.States)) {
    if (state.Type === 'Task') found.push([name, state]);
    const inner = state.ItemProcessor ?? state.Iterator;
    if (inner) tasksOf(inner, found);
  }
  return found;
}

/** History keeps inputs and outputs small and never holds a callback token. */
function forHistory(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  const text = JSON.stringify(value, (key, inner) => (/token/i.test(key) ? '[redacted]' : inner));
  return text.length > HISTORY_VALUE_LIMIT ? `${text.slice(0, HISTORY_VALUE_LIMIT)}…` : text;
}

/**
 * A function's error as a Task sees it on AWS: the Lambda Node.js runtime answers a thrown error with
 * its error document, `{"errorType": name, "errorMessage": message, "trace": stack lines}`, and Step
 * Functions hands the Catch `Error` = errorType and `Cause` = that document as JSON. Whoever shows a
 * Cause to people reads its errorMessage (core's `causeText`). Only the functions' errors take this
 * shape; SendTaskFailure's cause and the interpreter's own errors stay plain text, as on AWS.
 */
export function lambdaFunctionError(error: unknown): StatesError {
  const document =
    error instanceof Error
      ? { errorType: error.name || 'Error', errorMessage: error.message, trace: error.stack?.split('\n') ?? [] }
      : { errorType: typeof error, errorMessage: String(error), trace: [] };
  return new StatesError(document.errorType, JSON.stringify(document));
}

export interface ExecutionRecord {
  executionId: string;
  machine: string;
  input: Record<string, unknown>;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  startedAt: string;
  stoppedAt?: string;
  resumes: number;
  error?: string;
  cause?: string;
}

export interface HistoryEvent {
  id: string;
  at: string;
  type: string;
  state?: string;
  /** The Map iteration, for states inside one. */
  index?: number;
  input?: string;
  output?: string;
  error?: string;
  cause?: string;
}

export interface LocalExecutorOptions {
  /**
   * Called when an execution fails in a way its ASL could not catch (States.Runtime, an unhandled
   * error), so the release it ran for still ends cleanly. On AWS an EventBridge rule on execution
   * status does the same.
   */
  onFailed?: (record: ExecutionRecord, error: { Error: string; Cause: string }) => Promise<void>;
  client: DynamoDBDocumentClient;
  tableName: string;
  machines: Record<string, Definition>;
  ids: IdGenerator;
  logger: Logger;
}

interface Waiting {
  resolve: (output: Json) => void;
  reject: (error: Error) => void;
  heartbeat: () => void;
}

/**
 * Runs the very ASL that goes to AWS on the local interpreter (asl/interpreter.ts), with what AWS
 * adds around it: callback tokens (SendTaskSuccess/Failure/Heartbeat), a recorded history, and
 * durability. Every frame's position (the top level and each Map iteration) is journaled in the
 * local DynamoDB; after a crash, `resumeAll` runs each unfinished execution again and every frame
 * re-enters the state it stood in, a waiting task on the same token. Stages are idempotent, so a
 * task that was running at the crash may safely run again.
 */
export function createLocalExecutor(options: LocalExecutorOptions) {
  const { client, tableName, machines, ids, logger } = options;
  let functions: Record<string, LocalFunction> = {};
  const waiting = new Map<string, Waiting>();
  const running = new Map<string, { abort: () => void; done: Promise<void> }>();
  let closing = false;
  /** Executions stopped on purpose: their abort is not a crash to resume from. */
  const stopped = new Set<string>();

  for (const [machine, definition] of Object.entries(machines)) {
    validateDefinition(definition, functionNameOf, machine);
    for (const [name, state] of tasksOf(definition)) {
      if (!state.TimeoutSeconds && !state.TimeoutSecondsPath) throw new ConfigurationError(`${machine}: task ${name} has no TimeoutSeconds or TimeoutSecondsPath`);
    }
  }

  const key = (executionId: string, sk: string) => ({ pk: `EXEC#${executionId}`, sk });

  async function update(executionId: string, expression: string, values: Record<string, unknown>, names?: Record<string, string>) {
    await client.send(
      new UpdateCommand({
        TableName: tableName,
        Key: key(executionId, 'META'),
        UpdateExpression: expression,
        ExpressionAttributeValues: values,
        ...(names ? { ExpressionAttributeNames: names } : {}),
      }),
    );
  }

  async function appendHistory(executionId: string, event: Omit<HistoryEvent, 'id'>) {
    const id = ids.next();
    await client.send(new PutCommand({ TableName: tableName, Item: { ...key(executionId, `EVENT#${id}`), id, ...event } }));
  }

  async function queryAll(executionId: string, prefix: string): Promise<Record<string, unknown>[]> {
    const items: Record<string, unknown>[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await client.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': `EXEC#${executionId}`, ':prefix': prefix },
          ExclusiveStartKey: start,
          ConsistentRead: true,
        }),
      );
      items.push(...(page.Items ?? []));
      start = page.LastEvaluatedKey;
    } while (start);
    return items;
  }

  /** Where each frame of the execution stood, as journaled: empty for a new execution. */
  async function loadJournal(executionId: string, resumed: boolean) {
    const positions = new Map<string, Position>();
    const results = new Map<string, FrameResult>();
    if (resumed) {
      for (const item of await queryAll(executionId, 'FRAME#')) positions.set(String(item.frame), item.position as Position);
      for (const item of await queryAll(executionId, 'DONE#')) results.set(String(item.frame), item.result as FrameResult);
    }
    return {
      positions,
      results,
      async savePosition(frame: string, position: Position) {
        positions.set(frame, position);
        await client.send(new PutCommand({ TableName: tableName, Item: { ...key(executionId, `FRAME#${frame}`), frame, position } }));
      },
      async saveResult(frame: string, result: FrameResult) {
        results.set(frame, result);
        await client.send(new PutCommand({ TableName: tableName, Item: { ...key(executionId, `DONE#${frame}`), frame, result } }));
      },
    };
  }

  const inflight = new Set<Promise<unknown>>();

  async function invoke(name: string, payload: Json): Promise<Json> {
    const fn = functions[name];
    if (!fn) throw new ConfigurationError(`no local function ${name}`);
    if (closing) throw new ConfigurationError('the executor is closing');
    const call = fn(payload as Record<string, unknown>);
    inflight.add(call);
    try {
      return ((await call) ?? null) as Json;
    } catch (error) {
      throw lambdaFunctionError(error);
    } finally {
      inflight.delete(call);
    }
  }

  function waitForToken(token: string, heartbeat: () => void): CallbackWaiter {
    let entry!: Waiting;
    const outcome = new Promise<Json>((resolve, reject) => {
      entry = { resolve, reject, heartbeat };
    });
    waiting.set(token, entry);
    return {
      outcome,
      release() {
        if (waiting.get(token) === entry) waiting.delete(token);
      },
    };
  }

  async function trace(executionId: string, event: TraceEvent) {
    await appendHistory(executionId, {
      at: new Date().toISOString(),
      type: event.type,
      state: event.state,
      ...(event.index === undefined ? {} : { index: event.index }),
      ...(event.input === undefined ? {} : { input: forHistory(event.input) }),
      ...(event.output === undefined ? {} : { output: forHistory(event.output) }),
      ...(event.error === undefined ? {} : { error: event.error, cause: forHistory(event.cause) }),
    });
  }

  async function end(executionId: string, status: 'SUCCEEDED' | 'FAILED' | 'ABORTED', fields: Record<string, string>) {
    const names: Record<string, string> = { '#status': 'status' };
    const values: Record<string, unknown> = { ':status': status, ':now': new Date().toISOString() };
    const sets = ['#status = :status', 'stoppedAt = :now'];
    for (const [field, value] of Object.entries(fields)) {
      names[`#${field}`] = field;
      values[`:${field}`] = value;
      sets.push(`#${field} = :${field}`);
    }
    await update(executionId, `SET ${sets.join(', ')} REMOVE gsi1pk, gsi1sk`, values, names);
  }

  function run(record: ExecutionRecord, resumed: boolean) {
    const controller = new AbortController();
    const done = (async () => {
      try {
        const journal = await loadJournal(record.executionId, resumed);
        const output = await interpret(
          machines[record.machine]!,
          record.input as Json,
          {
            Execution: { Id: record.executionId, Name: record.executionId, Input: record.input as Json, StartTime: record.startedAt },
            StateMachine: { Id: record.machine, Name: record.machine },
          },
          {
            journal,
            invoke,
            functionName: functionNameOf,
            waitForToken,
            newToken: () => randomBytes(32).toString('base64url'),
            trace: (event) => trace(record.executionId, event),
            now: () => Date.now(),
          },
          controller.signal,
        );
        await end(record.executionId, 'SUCCEEDED', { output: forHistory(output) ?? '' });
        await appendHistory(record.executionId, { at: new Date().toISOString(), type: 'ExecutionSucceeded' });
        logger.info('execution succeeded', { executionId: record.executionId });
      } catch (error) {
        if (error instanceof AbortedError || controller.signal.aborted || closing || stopped.has(record.executionId)) return;
        const failure = asStatesError(error);
        await end(record.executionId, 'FAILED', { error: failure.error, cause: failure.causeText });
        await appendHistory(record.executionId, { at: new Date().toISOString(), type: 'ExecutionFailed', error: failure.error, cause: forHistory(failure.causeText) });
        logger.info('execution failed', { executionId: record.executionId, error: failure.error });
        await options.onFailed?.(record, { Error: failure.error, Cause: failure.causeText }).catch((hookError: unknown) =>
          logger.error('recording a failed execution failed', { executionId: record.executionId, error: hookError }),
        );
      } finally {
        running.delete(record.executionId);
      }
    })();
    running.set(record.executionId, { abort: () => controller.abort(), done });
  }

  async function describe(executionId: string): Promise<ExecutionRecord | undefined> {
    const result = await client.send(new GetCommand({ TableName: tableName, Key: key(executionId, 'META'), ConsistentRead: true }));
    if (!result.Item) return undefined;
    const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...record } = result.Item;
    return record as ExecutionRecord;
  }

  async function history(executionId: string): Promise<HistoryEvent[]> {
    return (await queryAll(executionId, 'EVENT#')).map(({ pk: _pk, sk: _sk, ...event }) => event as unknown as HistoryEvent);
  }

  async function start(machine: string, name: string, input: Record<string, unknown>) {
    const executionId = `${machine}:${name}`;
    const record: ExecutionRecord = {
      executionId,
      machine,
      input,
      status: 'RUNNING',
      startedAt: new Date().toISOString(),
      resumes: 0,
    };
    try {
      await client.send(
        new PutCommand({
          TableName: tableName,
          Item: { ...key(executionId, 'META'), ...record, gsi1pk: 'EXECUTIONS#RUNNING', gsi1sk: executionId },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
    } catch (error) {
      // Same name, same execution: starting again is a no-op, as StartExecution is on AWS.
      if (error instanceof Error && error.name === 'ConditionalCheckFailedException') return { executionId };
      throw error;
    }
    await appendHistory(executionId, { at: record.startedAt, type: 'ExecutionStarted', input: forHistory(input) });
    run(record, false);
    return { executionId };
  }

  function waiterOf(taskToken: string): Waiting {
    const task = waiting.get(taskToken);
    if (!task) throw new StaleTaskTokenError('no task waits on this token');
    return task;
  }

  const workflow: Workflow = {
    startRelease: (input: ReleaseExecutionInput) =>
      start(input.kind ?? 'release', input.releaseId, { releaseId: input.releaseId, app: input.app }),

    async sendTaskSuccess(taskToken, output) {
      waiterOf(taskToken).resolve(output as Json);
    },

    async sendTaskFailure(taskToken, error, cause) {
      const failure = new Error(cause);
      failure.name = error;
      waiterOf(taskToken).reject(failure);
    },

    async sendTaskHeartbeat(taskToken) {
      waiterOf(taskToken).heartbeat();
    },

    async stopRelease(releaseId, cause) {
      for (const machine of ['release', 'rollback']) {
        const executionId = `${machine}:${releaseId}`;
        const record = await describe(executionId);
        if (!record || record.status !== 'RUNNING') continue;
        stopped.add(executionId);
        running.get(executionId)?.abort();
        await end(executionId, 'ABORTED', { cause });
        await appendHistory(executionId, { at: new Date().toISOString(), type: 'ExecutionAborted', cause });
        await options.onFailed?.(record, { Error: 'ReleaseCancelled', Cause: cause });
      }
    },

    async forget(releaseId) {
      for (const machine of ['release', 'rollback']) {
        const executionId = `${machine}:${releaseId}`;
        const items = (await Promise.all(['EVENT#', 'FRAME#', 'DONE#', 'META'].map((prefix) => queryAll(executionId, prefix)))).flat();
        for (let i = 0; i < items.length; i += 25) {
          const requests = items.slice(i, i + 25).map((item) => ({ DeleteRequest: { Key: { pk: item.pk, sk: item.sk } } }));
          let pending: typeof requests = requests;
          while (pending.length > 0) {
            const result = await client.send(new BatchWriteCommand({ RequestItems: { [tableName]: pending } }));
            pending = (result.UnprocessedItems?.[tableName] ?? []) as typeof requests;
          }
        }
      }
    },

    async releaseHistory(releaseId) {
      let executionId = `release:${releaseId}`;
      let record = await describe(executionId);
      if (!record) {
        executionId = `rollback:${releaseId}`;
        record = await describe(executionId);
      }
      if (!record) return undefined;
      const events = (await history(executionId)).map(({ id: _id, input: _input, output: _output, ...event }) => event);
      return {
        executionId,
        status: record.status,
        startedAt: record.startedAt,
        ...(record.stoppedAt ? { stoppedAt: record.stoppedAt } : {}),
        events,
      };
    },
  };

  return {
    ...workflow,
    /** The functions the state machines call, by name (`slipway-<Name>` in the ARN). */
    register(registry: Record<string, LocalFunction>) {
      functions = registry;
    },

    /** Picks up every execution a crash or a stop left unfinished, each frame where it stood. */
    async resumeAll(): Promise<string[]> {
      const result = await client.send(
        new QueryCommand({
          TableName: tableName,
          IndexName: 'gsi1',
          KeyConditionExpression: 'gsi1pk = :running',
          ExpressionAttributeValues: { ':running': 'EXECUTIONS#RUNNING' },
        }),
      );
      const resumed: string[] = [];
      for (const item of result.Items ?? []) {
        const record = item as unknown as ExecutionRecord;
        if (running.has(record.executionId) || !machines[record.machine]) continue;
        await update(record.executionId, 'SET resumes = resumes + :one', { ':one': 1 });
        await appendHistory(record.executionId, { at: new Date().toISOString(), type: 'ExecutionResumed' });
        logger.info('resuming execution', { executionId: record.executionId });
        run(record, true);
        resumed.push(record.executionId);
      }
      return resumed;
    },

    /** Starts an execution of any registered machine with any input (idempotent by name). */
    startExecution: start,
    describe,
    history,

    /** Waits until no execution runs (for tests and graceful stops of short runs). */
    async idle(): Promise<void> {
      while (running.size > 0) await Promise.all([...running.values()].map((r) => r.done));
    },

    /** Stops running executions without ending them: the next start resumes them. */
    async close(): Promise<void> {
      closing = true;
      for (const execution of running.values()) execution.abort();
      await Promise.all([...running.values()].map((r) => r.done.catch(() => {})));
      // Functions already running finish their step (it is recorded, so the resumed run finds it).
      await Promise.allSettled([...inflight]);
      waiting.clear();
    },
  };
}
export type LocalExecutor = ReturnType<typeof createLocalExecutor>;
