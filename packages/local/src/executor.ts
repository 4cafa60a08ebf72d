import { randomBytes } from 'node:crypto';
import { type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import {
  ConfigurationError,
  type IdGenerator,
  type Logger,
  type ReleaseExecutionInput,
  StaleTaskTokenError,
  type Workflow,
} from '@slipway/core';

// aws-local-stepfunctions awaits Promise.withResolvers, which Node 20 lacks.
if (typeof (Promise as { withResolvers?: unknown }).withResolvers !== 'function') {
  Object.defineProperty(Promise, 'withResolvers', {
    configurable: true,
    writable: true,
    value<T>() {
      let resolve!: (value: T) => void;
      let reject!: (reason?: unknown) => void;
      const promise = new Promise<T>((yes, no) => {
        resolve = yes;
        reject = no;
      });
      return { promise, resolve, reject };
    },
  });
}
const { StateMachine, ExecutionAbortedError } = await import('aws-local-stepfunctions');

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type Definition = { StartAt: string; States: Record<string, State>; [other: string]: unknown };
type State = {
  Type: string;
  Resource?: string;
  Parameters?: { FunctionName?: string; [other: string]: unknown };
  ItemProcessor?: Definition;
  Iterator?: Definition;
  [other: string]: unknown;
};

/** A function the state machine may call, as Lambda would: an event in, a result out. */
export type LocalFunction = (payload: Record<string, unknown>) => Promise<unknown>;

const CALLBACK_RESOURCE = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
export const LOCAL_FUNCTION_ARN_PREFIX = 'arn:aws:lambda:us-east-1:000000000000:function:slipway-';
const HISTORY_VALUE_LIMIT = 4096;

/** Fills `${NameFunctionArn}` placeholders with the local ARN of each function, as the deploy does on AWS. */
export function renderDefinition(text: string): Definition {
  return JSON.parse(text.replace(/\$\{(\w+)FunctionArn\}/g, (_, name: string) => `${LOCAL_FUNCTION_ARN_PREFIX}${name}`));
}

function functionNameOf(arn: string): string {
  if (!arn.startsWith(LOCAL_FUNCTION_ARN_PREFIX)) throw new ConfigurationError(`${arn} is not a local Slipway function`);
  return arn.slice(LOCAL_FUNCTION_ARN_PREFIX.length);
}

function tasksOf(definition: Definition, found: [string, State][] = []): [string, State][] {
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

export interface ExecutionRecord {
  executionId: string;
  machine: string;
  input: Record<string, unknown>;
  status: 'RUNNING' | 'SUCCEEDED' | 'FAILED' | 'ABORTED';
  startedAt: string;
  stoppedAt?: string;
  /** The last top-level state entered and its input: where a resumed execution starts. */
  resumeAt?: { state: string; input: Json };
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

/**
 * Runs the very ASL that goes to AWS, with what the interpreter lacks: callback tokens
 * (SendTaskSuccess/Failure), a recorded history, and durability. Every execution and the last
 * top-level state it entered are kept in the local DynamoDB; after a crash, `resumeAll` runs each
 * unfinished execution again from that state, which is safe because every stage is idempotent.
 */
export function createLocalExecutor(options: LocalExecutorOptions) {
  const { client, tableName, machines, ids, logger } = options;
  let functions: Record<string, LocalFunction> = {};
  const waiting = new Map<string, { resolve: (output: Json) => void; reject: (error: Error) => void }>();
  const running = new Map<string, { abort: () => void; done: Promise<void> }>();
  let closing = false;
  /** Executions stopped on purpose: their abort is not a crash to resume from. */
  const stopped = new Set<string>();

  for (const [machine, definition] of Object.entries(machines)) {
    // Validated once here (about 60 ms of CPU each time); every run after that skips it.
    new StateMachine(definition as never);
    for (const [name, state] of tasksOf(definition)) {
      if (!state.TimeoutSeconds) throw new ConfigurationError(`${machine}: task ${name} has no TimeoutSeconds`);
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

  function localHandlers(machine: string) {
    const handlers: Record<string, (input: Json) => Promise<Json>> = {};
    for (const [name, state] of tasksOf(machines[machine]!)) {
      if (state.Resource === CALLBACK_RESOURCE) {
        handlers[name] = async (input) => {
          const { FunctionName, Payload } = input as { FunctionName: string; Payload: Record<string, unknown> };
          const token = String(Payload.taskToken);
          const outcome = new Promise<Json>((resolve, reject) => waiting.set(token, { resolve, reject }));
          try {
            await invoke(functionNameOf(FunctionName), Payload);
            return await outcome;
          } finally {
            waiting.delete(token);
          }
        };
      } else {
        handlers[name] = async (input) => (await invoke(functionNameOf(String(state.Resource)), input as Record<string, unknown>)) as Json;
      }
    }
    return handlers;
  }

  const inflight = new Set<Promise<unknown>>();

  async function invoke(name: string, payload: Record<string, unknown>): Promise<unknown> {
    const fn = functions[name];
    if (!fn) throw new ConfigurationError(`no local function ${name}`);
    if (closing) throw new ConfigurationError('the executor is closing');
    const call = fn(payload);
    inflight.add(call);
    try {
      return await call;
    } finally {
      inflight.delete(call);
    }
  }

  function run(record: ExecutionRecord) {
    const base = machines[record.machine]!;
    const from = record.resumeAt;
    const definition = from ? { ...base, StartAt: from.state } : base;
    // Validated whole when the executor was made; a resumed copy starts mid-way, which the validator
    // would refuse for its unreachable states anyway.
    const machine = new StateMachine(definition as never, { validationOptions: { noValidate: true } });
    const context = {
      Execution: { Id: record.executionId, Name: record.executionId, Input: record.input as Json, StartTime: record.startedAt },
      Task: {} as Record<string, string>,
    };
    Object.defineProperty(context.Task, 'Token', { enumerable: true, get: () => randomBytes(32).toString('base64url') });
    const execution = machine.run((from ? from.input : record.input) as Json, {
      context,
      overrides: { taskResourceLocalHandlers: localHandlers(record.machine) },
    });

    const recording = (async () => {
      for await (const event of execution.eventLogs) {
        const state = 'state' in event ? event.state : 'parentState' in event ? event.parentState : undefined;
        const index = 'index' in event ? event.index : undefined;
        await appendHistory(record.executionId, {
          at: new Date(event.timestamp).toISOString(),
          type: event.type,
          ...(state ? { state: state.name } : {}),
          ...(index === undefined ? {} : { index }),
          ...(event.type === 'StateEntered' || event.type === 'ExecutionStarted' ? { input: forHistory('input' in event ? event.input : state?.input) } : {}),
          ...(event.type === 'StateExited' ? { output: forHistory(state?.output) } : {}),
          ...('Error' in event ? { error: String(event.Error), cause: forHistory(event.Cause) } : {}),
        });
        if (event.type === 'StateEntered' && index === undefined && state) {
          await update(record.executionId, 'SET resumeAt = :at', { ':at': { state: state.name, input: state.input } });
        }
      }
    })();

    const done = (async () => {
      try {
        const output = await execution.result;
        await recording;
        await update(record.executionId, 'SET #status = :status, stoppedAt = :now, #output = :output REMOVE gsi1pk, gsi1sk', {
          ':status': 'SUCCEEDED',
          ':now': new Date().toISOString(),
          ':output': forHistory(output) ?? '',
        }, { '#status': 'status', '#output': 'output' });
        logger.info('execution succeeded', { executionId: record.executionId });
      } catch (error) {
        await recording.catch(() => {});
        if (error instanceof ExecutionAbortedError || closing || stopped.has(record.executionId)) return;
        const failure = error as { name?: string; message?: string; cause?: { Error?: string; Cause?: unknown } };
        await update(record.executionId, 'SET #status = :status, stoppedAt = :now, #error = :error, #cause = :cause REMOVE gsi1pk, gsi1sk', {
          ':status': 'FAILED',
          ':now': new Date().toISOString(),
          ':error': String(failure.name ?? 'Error'),
          ':cause': String(failure.message ?? ''),
        }, { '#status': 'status', '#error': 'error', '#cause': 'cause' });
        logger.info('execution failed', { executionId: record.executionId, error: failure.name });
        await options.onFailed?.(record, { Error: String(failure.name ?? 'Error'), Cause: String(failure.message ?? '') }).catch((hookError: unknown) =>
          logger.error('recording a failed execution failed', { executionId: record.executionId, error: hookError }),
        );
      } finally {
        running.delete(record.executionId);
      }
    })();
    running.set(record.executionId, { abort: execution.abort, done });
  }

  async function describe(executionId: string): Promise<ExecutionRecord | undefined> {
    const result = await client.send(new GetCommand({ TableName: tableName, Key: key(executionId, 'META'), ConsistentRead: true }));
    if (!result.Item) return undefined;
    const { pk: _pk, sk: _sk, gsi1pk: _g1, gsi1sk: _g2, ...record } = result.Item;
    return record as ExecutionRecord;
  }

  async function history(executionId: string): Promise<HistoryEvent[]> {
    const events: HistoryEvent[] = [];
    let start: Record<string, unknown> | undefined;
    do {
      const page = await client.send(
        new QueryCommand({
          TableName: tableName,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :events)',
          ExpressionAttributeValues: { ':pk': `EXEC#${executionId}`, ':events': 'EVENT#' },
          ExclusiveStartKey: start,
        }),
      );
      for (const item of page.Items ?? []) {
        const { pk: _pk, sk: _sk, ...event } = item;
        events.push(event as HistoryEvent);
      }
      start = page.LastEvaluatedKey;
    } while (start);
    return events;
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
    await appendHistory(executionId, { at: record.startedAt, type: 'ExecutionRequested', input: forHistory(input) });
    run(record);
    return { executionId };
  }

  const workflow: Workflow = {
    startRelease: (input: ReleaseExecutionInput) =>
      start(input.kind ?? 'release', input.releaseId, { releaseId: input.releaseId, app: input.app }),

    async sendTaskSuccess(taskToken, output) {
      const task = waiting.get(taskToken);
      if (!task) throw new StaleTaskTokenError('no task waits on this token');
      task.resolve(output as Json);
    },

    async sendTaskFailure(taskToken, error, cause) {
      const task = waiting.get(taskToken);
      if (!task) throw new StaleTaskTokenError('no task waits on this token');
      const failure = new Error(cause);
      failure.name = error;
      task.reject(failure);
    },

    async sendTaskHeartbeat(taskToken) {
      // The interpreter has no heartbeat timeout; a heartbeat still tells whether the task waits.
      if (!waiting.has(taskToken)) throw new StaleTaskTokenError('no task waits on this token');
    },

    async stopRelease(releaseId, cause) {
      for (const machine of ['release', 'rollback']) {
        const executionId = `${machine}:${releaseId}`;
        const record = await describe(executionId);
        if (!record || record.status !== 'RUNNING') continue;
        stopped.add(executionId);
        running.get(executionId)?.abort();
        await update(executionId, 'SET #status = :status, stoppedAt = :now, #cause = :cause REMOVE gsi1pk, gsi1sk', {
          ':status': 'ABORTED',
          ':now': new Date().toISOString(),
          ':cause': cause,
        }, { '#status': 'status', '#cause': 'cause' });
        await appendHistory(executionId, { at: new Date().toISOString(), type: 'ExecutionAborted', cause });
        await options.onFailed?.(record, { Error: 'ReleaseCancelled', Cause: cause });
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

    /** Picks up every execution a crash or a stop left unfinished, from its last top-level state. */
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
        await appendHistory(record.executionId, {
          at: new Date().toISOString(),
          type: 'ExecutionResumed',
          ...(record.resumeAt ? { state: record.resumeAt.state } : {}),
        });
        logger.info('resuming execution', { executionId: record.executionId, from: record.resumeAt?.state ?? 'start' });
        run(record);
        resumed.push(record.executionId);
      }
      return resumed;
    },

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
      // Aborted executions no longer wait on their tasks; the resumed ones will ask again.
      waiting.clear();
    },
  };
}
export type LocalExecutor = ReturnType<typeof createLocalExecutor>;
