import { evaluateChoice, validateChoice } from './choice.ts';
import {
  applyPath,
  applyResultPath,
  type Json,
  parsePath,
  renderTemplate,
  select,
  StatesError,
  templatePaths,
  UnsupportedDefinitionError,
} from './paths.ts';

/**
 * A States Language interpreter for the local runtime, written for durability: every frame (the
 * top level, and each Map iteration) journals the state it stands in, with that state's input,
 * the attempt in progress and its callback token. After a crash, the same definition runs again and
 * every frame re-enters the state it stood in: a finished Map iteration is not run again, a waiting
 * callback task waits on the same token, a Wait ends when it was due to.
 *
 * Semantics follow the AWS documentation where safety depends on them (test/conformance proves
 * each): a failed Map iteration fails the Map and no further iteration starts; Retry and Catch
 * apply to a Map as a whole; TimeoutSeconds (or TimeoutSecondsPath, read from the task's effective
 * input) and HeartbeatSeconds end a task with States.Timeout and States.HeartbeatTimeout; a path
 * that selects nothing is States.Runtime, which States.ALL does not catch. Supported: Task (a Lambda
 * function ARN, or `lambda:invoke.waitForTaskToken`), Choice, Map (inline), Wait, Pass, Succeed,
 * Fail. Anything else is refused when the definition is loaded.
 */

export type { Json } from './paths.ts';
export { StatesError, UnsupportedDefinitionError } from './paths.ts';

export const CALLBACK_RESOURCE = 'arn:aws:states:::lambda:invoke.waitForTaskToken';

export interface Definition {
  StartAt: string;
  States: Record<string, State>;
  [other: string]: unknown;
}

interface Retrier {
  ErrorEquals: string[];
  IntervalSeconds?: number;
  MaxAttempts?: number;
  BackoffRate?: number;
  MaxDelaySeconds?: number;
}

interface Catcher {
  ErrorEquals: string[];
  Next: string;
  ResultPath?: string | null;
}

export interface State {
  Type: string;
  Next?: string;
  End?: boolean;
  Resource?: string;
  Parameters?: Json;
  ResultSelector?: Json;
  ItemSelector?: Json;
  InputPath?: string | null;
  OutputPath?: string | null;
  ResultPath?: string | null;
  ItemsPath?: string;
  MaxConcurrency?: number;
  ItemProcessor?: Definition;
  Iterator?: Definition;
  TimeoutSeconds?: number;
  TimeoutSecondsPath?: string;
  HeartbeatSeconds?: number;
  Retry?: Retrier[];
  Catch?: Catcher[];
  Seconds?: number;
  SecondsPath?: string;
  Timestamp?: string;
  TimestampPath?: string;
  Result?: Json;
  Error?: string;
  Cause?: string;
  ErrorPath?: string;
  CausePath?: string;
  Choices?: unknown[];
  Default?: string;
  [other: string]: unknown;
}

/** Where one frame stands: the state, its input, and what of it is already under way. */
export interface Position {
  state: string;
  input: Json;
  /** How many states this frame entered before this one; it names the Map iterations started here. */
  step: number;
  /** Retries made so far, per retrier of the state. */
  retries: number[];
  /** The task attempt under way: its callback token and when it started (its timeout counts from there). */
  task?: { token?: string; startedAt: number };
  /** A retry waits until then before its next attempt. */
  retryAt?: number;
  /** A Wait state ends then. */
  waitUntil?: number;
}

export type FrameResult = { ok: true; output: Json } | { ok: false; error: string; cause: string };

export interface Journal {
  positions: ReadonlyMap<string, Position>;
  results: ReadonlyMap<string, FrameResult>;
  savePosition(frame: string, position: Position): Promise<void>;
  saveResult(frame: string, result: FrameResult): Promise<void>;
}

export interface TraceEvent {
  type:
    | 'StateEntered' |
    'StateExited' |
    'StateResumed' |
    'StateFailed' |
    'StateRetried' |
    'CaughtError' |
    'MapIterationStarted' |
    'MapIterationSucceeded' |
    'MapIterationFailed';
  state: string;
  frame: string;
  /** The Map iteration this state runs in, if any. */
  index?: number;
  input?: Json;
  output?: Json;
  error?: string;
  cause?: string;
}

/** A callback task waiting for SendTaskSuccess, SendTaskFailure or a heartbeat. */
export interface CallbackWaiter {
  outcome: Promise<Json>;
  release(): void;
}

export interface InterpreterHooks {
  journal: Journal;
  /** Calls a function by the name the ARN gives it. */
  invoke(functionName: string, payload: Json): Promise<Json>;
  /** The function a Task's ARN names; throws for an ARN that is not one of ours. */
  functionName(arn: string): string;
  /** Registers a waiter for the token; `onHeartbeat` runs on each SendTaskHeartbeat. */
  waitForToken(token: string, onHeartbeat: () => void): CallbackWaiter;
  newToken(): string;
  trace(event: TraceEvent): Promise<void>;
  now(): number;
}

export class AbortedError extends Error {
  override name = 'AbortedError';
}

const DAY_MS = 86_400_000;

/** Resolves at `at` (epoch ms), in steps short enough for Node's timers; rejects when aborted. */
export function sleepUntil(at: number, now: () => number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) return reject(new AbortedError('aborted'));
    let timer: NodeJS.Timeout;
    const onAbort = () => {
      clearTimeout(timer);
      reject(new AbortedError('aborted'));
    };
    const arm = () => {
      const left = at - now();
      if (left <= 0) {
        signal.removeEventListener('abort', onAbort);
        resolve();
        return;
      }
      timer = setTimeout(arm, Math.min(left, DAY_MS));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    arm();
  });
}

/** Any error becomes a States error: a function's error keeps its name, as Lambda's errorType does. */
export function asStatesError(error: unknown): StatesError {
  if (error instanceof StatesError) return error;
  if (error instanceof Error) return new StatesError(error.name || 'Error', error.message);
  return new StatesError('Error', String(error));
}

const UNCATCHABLE_BY_ALL = new Set(['States.Runtime', 'States.DataLimitExceeded']);
const TIMEOUTS = new Set(['States.Timeout', 'States.HeartbeatTimeout']);

/** Whether an `ErrorEquals` list matches an error name, with the documented wildcards. */
export function errorMatches(errorEquals: readonly string[], name: string): boolean {
  return errorEquals.some(
    (pattern) =>
      pattern === name ||
      (pattern === 'States.ALL' && !UNCATCHABLE_BY_ALL.has(name)) ||
      (pattern === 'States.Timeout' && name === 'States.HeartbeatTimeout') ||
      (pattern === 'States.TaskFailed' && !TIMEOUTS.has(name) && !UNCATCHABLE_BY_ALL.has(name)),
  );
}

const SUPPORTED_TYPES = new Set(['Task', 'Choice', 'Map', 'Wait', 'Pass', 'Succeed', 'Fail']);

/**
 * Checks everything the interpreter relies on before any run: state types, transitions, task
 * resources, paths, Choice rules. A definition that passes runs to the end or fails in States terms.
 */
export function validateDefinition(definition: Definition, functionName: (arn: string) => string, where = 'the definition'): void {
  if (!definition.States?.[definition.StartAt]) throw new UnsupportedDefinitionError(`${where}: StartAt ${definition.StartAt} is not a state`);
  for (const [name, state] of Object.entries(definition.States)) {
    const at = `${where}: state ${name}`;
    if (!SUPPORTED_TYPES.has(state.Type)) throw new UnsupportedDefinitionError(`${at}: type ${state.Type} is not supported by the local executor`);
    const targets = [
      state.Next,
      state.Default,
      ...(state.Catch ?? []).map((c) => c.Next),
      ...(state.Choices ?? []).map((c) => (c as { Next?: string }).Next),
    ];
    for (const target of targets) {
      if (target !== undefined && !definition.States[target]) throw new UnsupportedDefinitionError(`${at}: goes to ${target}, which is not a state`);
    }
    if (!['Choice', 'Succeed', 'Fail'].includes(state.Type) && !state.Next && !state.End) {
      throw new UnsupportedDefinitionError(`${at}: needs Next or End`);
    }
    if (state.TimeoutSeconds !== undefined && state.TimeoutSecondsPath !== undefined) {
      throw new UnsupportedDefinitionError(`${at}: give TimeoutSeconds or TimeoutSecondsPath, not both`);
    }
    for (const field of ['InputPath', 'OutputPath', 'ResultPath', 'ItemsPath', 'SecondsPath', 'TimestampPath', 'ErrorPath', 'CausePath', 'TimeoutSecondsPath'] as const) {
      const path = state[field];
      if (typeof path === 'string') parsePath(path);
    }
    for (const catcher of state.Catch ?? []) if (typeof catcher.ResultPath === 'string') parsePath(catcher.ResultPath);
    for (const template of [state.Parameters, state.ResultSelector, state.ItemSelector]) {
      for (const path of templatePaths(template)) parsePath(path);
    }
    if (state.Type === 'Task') {
      if (state.Resource === CALLBACK_RESOURCE) {
        const parameters = state.Parameters as { FunctionName?: unknown; Payload?: unknown } | undefined;
        if (typeof parameters?.FunctionName !== 'string') throw new UnsupportedDefinitionError(`${at}: a callback task needs Parameters.FunctionName`);
        functionName(parameters.FunctionName);
      } else if (typeof state.Resource === 'string') {
        functionName(state.Resource);
      } else throw new UnsupportedDefinitionError(`${at}: a task needs a Resource`);
    }
    if (state.Type === 'Choice') validateChoice(state.Choices ?? [], at);
    if (state.Type === 'Map') {
      const processor = state.ItemProcessor ?? state.Iterator;
      if (!processor) throw new UnsupportedDefinitionError(`${at}: a Map needs an ItemProcessor`);
      const mode = (processor.ProcessorConfig as { Mode?: string } | undefined)?.Mode;
      if (mode && mode !== 'INLINE') throw new UnsupportedDefinitionError(`${at}: only INLINE Map processing runs locally`);
      validateDefinition(processor, functionName, `${at}`);
    }
  }
}

interface ExecutionContext {
  Execution: { Id: string; Name: string; Input: Json; StartTime: string };
  StateMachine: { Id: string; Name: string };
}

interface Transition {
  output: Json;
  next?: string;
}

/**
 * Runs one execution of a definition, resuming each frame where the journal says it stood.
 * Aborting the signal stops it without writing anything more (the journal keeps where it stood).
 */
export async function interpret(
  definition: Definition,
  input: Json,
  execution: ExecutionContext,
  hooks: InterpreterHooks,
  signal: AbortSignal,
): Promise<Json> {
  const { journal } = hooks;

  function checkAborted(aborted: AbortSignal) {
    if (aborted.aborted) throw new AbortedError('aborted');
  }

  function contextFor(state: string, enteredAt: number, extra: Record<string, Json> = {}): Json {
    return {
      Execution: execution.Execution,
      StateMachine: execution.StateMachine,
      State: { Name: state, EnteredTime: new Date(enteredAt).toISOString() },
      ...extra,
    } as Json;
  }

  async function runFrame(processor: Definition, frame: string, frameInput: Json, frameSignal: AbortSignal, index?: number): Promise<Json> {
    let position = journal.positions.get(frame);
    const resumed = position !== undefined;
    if (!position) {
      position = { state: processor.StartAt, input: frameInput, step: 0, retries: [] };
      await journal.savePosition(frame, position);
    }
    let first = true;
    for (;;) {
      checkAborted(frameSignal);
      const name = position.state;
      const state = processor.States[name]!;
      const traceBase = { state: name, frame, ...(index === undefined ? {} : { index }) };
      if (first && resumed) await hooks.trace({ type: 'StateResumed', ...traceBase });
      else await hooks.trace({ type: 'StateEntered', ...traceBase, input: position.input });
      first = false;
      const transition = await runState(state, name, frame, position, frameSignal, index);
      checkAborted(frameSignal);
      await hooks.trace({ type: 'StateExited', ...traceBase, output: transition.output });
      if (!transition.next) return transition.output;
      position = { state: transition.next, input: transition.output, step: position.step + 1, retries: [] };
      await journal.savePosition(frame, position);
    }
  }

  /** Runs a state with its Retry and Catch, from wherever its journaled position says it stood. */
  async function runState(
    state: State,
    name: string,
    frame: string,
    position: Position,
    frameSignal: AbortSignal,
    index?: number,
  ): Promise<Transition> {
    const enteredAt = hooks.now();
    const context = contextFor(name, enteredAt);
    const rawInput = position.input;
    const traceBase = { state: name, frame, ...(index === undefined ? {} : { index }) };
    switch (state.Type) {
      case 'Pass': {
        const effective = applyPath(state.InputPath, rawInput, context, 'InputPath');
        const result = state.Result !== undefined ? state.Result : state.Parameters !== undefined ? renderTemplate(state.Parameters, effective, context, 'Parameters') : effective;
        return finish(state, rawInput, result, context);
      }
      case 'Succeed':
        return { output: applyPath(state.OutputPath, applyPath(state.InputPath, rawInput, context, 'InputPath'), context, 'OutputPath') };
      case 'Fail': {
        const error = state.ErrorPath ? String(select(state.ErrorPath, rawInput, context, 'ErrorPath')) : (state.Error ?? 'States.Fail');
        const cause = state.CausePath ? String(select(state.CausePath, rawInput, context, 'CausePath')) : (state.Cause ?? '');
        throw new StatesError(error, cause);
      }
      case 'Choice': {
        const effective = applyPath(state.InputPath, rawInput, context, 'InputPath');
        const next = evaluateChoice(state.Choices ?? [], effective, context) ?? state.Default;
        if (!next) throw new StatesError('States.NoChoiceMatched', `no rule of Choice state ${name} matched and it has no Default`);
        return { output: applyPath(state.OutputPath, effective, context, 'OutputPath'), next };
      }
      case 'Wait': {
        const effective = applyPath(state.InputPath, rawInput, context, 'InputPath');
        if (position.waitUntil === undefined) {
          position.waitUntil = waitEnd(state, effective, context, enteredAt);
          await journal.savePosition(frame, position);
        }
        await sleepUntil(position.waitUntil, hooks.now, frameSignal);
        return { output: applyPath(state.OutputPath, effective, context, 'OutputPath'), ...next(state) };
      }
      case 'Task':
      case 'Map':
        break;
      default:
        throw new StatesError('States.Runtime', `state type ${state.Type} is not supported`);
    }

    for (;;) {
      checkAborted(frameSignal);
      if (position.retryAt !== undefined) await sleepUntil(position.retryAt, hooks.now, frameSignal);
      try {
        const effective = applyPath(state.InputPath, rawInput, context, 'InputPath');
        const result =
          state.Type === 'Task'
            ? await runTask(state, name, frame, position, effective, frameSignal)
            : await runMap(state, frame, position, effective, context, frameSignal);
        const selected = state.ResultSelector !== undefined ? renderTemplate(state.ResultSelector, result, context, 'ResultSelector') : result;
        return finish(state, rawInput, selected, context);
      } catch (caught) {
        if (caught instanceof AbortedError || frameSignal.aborted) throw new AbortedError('aborted');
        const error = asStatesError(caught);
        await hooks.trace({ type: 'StateFailed', ...traceBase, error: error.error, cause: error.causeText });
        const retrierIndex = (state.Retry ?? []).findIndex((r) => errorMatches(r.ErrorEquals, error.error));
        const retrier = state.Retry?.[retrierIndex];
        const made = position.retries[retrierIndex] ?? 0;
        if (retrier && made < (retrier.MaxAttempts ?? 3)) {
          const delaySeconds = Math.min(
            (retrier.IntervalSeconds ?? 1) * (retrier.BackoffRate ?? 2) ** made,
            retrier.MaxDelaySeconds ?? Number.POSITIVE_INFINITY,
          );
          const retries = [...position.retries];
          retries[retrierIndex] = made + 1;
          Object.assign(position, { retries, retryAt: hooks.now() + delaySeconds * 1000, task: undefined });
          await journal.savePosition(frame, position);
          await hooks.trace({ type: 'StateRetried', ...traceBase, error: error.error });
          continue;
        }
        const catcher = (state.Catch ?? []).find((c) => errorMatches(c.ErrorEquals, error.error));
        if (!catcher) throw error;
        await hooks.trace({ type: 'CaughtError', ...traceBase, error: error.error });
        const errorOutput: Json = { Error: error.error, Cause: error.causeText };
        return { output: applyResultPath(catcher.ResultPath, rawInput, errorOutput), next: catcher.Next };
      }
    }
  }

  function next(state: State): { next?: string } {
    return state.End ? {} : { next: state.Next! };
  }

  function finish(state: State, rawInput: Json, result: Json, context: Json): Transition {
    const withResult = applyResultPath(state.ResultPath, rawInput, result);
    return { output: applyPath(state.OutputPath, withResult, context, 'OutputPath'), ...next(state) };
  }

  function waitEnd(state: State, input: Json, context: Json, enteredAt: number): number {
    if (state.Seconds !== undefined) return enteredAt + state.Seconds * 1000;
    if (state.SecondsPath) {
      const seconds = select(state.SecondsPath, input, context, 'SecondsPath');
      if (typeof seconds !== 'number' || seconds < 0) throw new StatesError('States.Runtime', `SecondsPath '${state.SecondsPath}' must select a number of seconds`);
      return enteredAt + seconds * 1000;
    }
    const timestamp = state.Timestamp ?? select(state.TimestampPath!, input, context, 'TimestampPath');
    const at = typeof timestamp === 'string' ? Date.parse(timestamp) : Number.NaN;
    if (Number.isNaN(at)) throw new StatesError('States.Runtime', `the Wait timestamp ${JSON.stringify(timestamp)} is not an ISO 8601 time`);
    return at;
  }

  /** One attempt of a Task: a function call, or a call that hands out a token and waits on it. */
  async function runTask(
    state: State,
    name: string,
    frame: string,
    position: Position,
    effective: Json,
    frameSignal: AbortSignal,
  ): Promise<Json> {
    const callback = state.Resource === CALLBACK_RESOURCE;
    if (!position.task) {
      position.task = { startedAt: hooks.now(), ...(callback ? { token: hooks.newToken() } : {}) };
      delete position.retryAt;
      await journal.savePosition(frame, position);
    }
    const { startedAt, token } = position.task;
    const context = contextFor(name, startedAt, token ? { Task: { Token: token } } : {});
    const parameters = state.Parameters !== undefined ? renderTemplate(state.Parameters, effective, context, 'Parameters') : effective;
    // Read from the same input at every resume, so a task resumed after a crash keeps its deadline.
    const timeoutSeconds = state.TimeoutSecondsPath !== undefined ? select(state.TimeoutSecondsPath, effective, context, 'TimeoutSecondsPath') : state.TimeoutSeconds;
    if (timeoutSeconds !== undefined && (typeof timeoutSeconds !== 'number' || !Number.isInteger(timeoutSeconds) || timeoutSeconds < 1)) {
      throw new StatesError('States.Runtime', `TimeoutSecondsPath '${state.TimeoutSecondsPath}' must select a positive whole number of seconds, not ${JSON.stringify(timeoutSeconds)}`);
    }

    return new Promise<Json>((resolve, reject) => {
      const timers = new AbortController();
      let heartbeat: AbortController | undefined;
      const holder: { waiter?: CallbackWaiter } = {};
      let settled = false;
      const settle = (action: () => void) => {
        if (settled) return;
        settled = true;
        timers.abort();
        heartbeat?.abort();
        holder.waiter?.release();
        frameSignal.removeEventListener('abort', onAbort);
        action();
      };
      const fail = (error: unknown) => settle(() => reject(error));
      const onAbort = () => fail(new AbortedError('aborted'));
      const failAt = (at: number, signal: AbortSignal, error: StatesError) =>
        sleepUntil(at, hooks.now, signal).then(() => fail(error), () => {});
      if (frameSignal.aborted) return onAbort();
      frameSignal.addEventListener('abort', onAbort, { once: true });
      if (timeoutSeconds !== undefined) {
        const timeout = new StatesError('States.Timeout', `${name} ran longer than its ${state.TimeoutSecondsPath === undefined ? 'TimeoutSeconds' : 'TimeoutSecondsPath'} (${timeoutSeconds})`);
        void failAt(startedAt + timeoutSeconds * 1000, timers.signal, timeout);
      }
      if (!callback) {
        hooks.invoke(hooks.functionName(state.Resource!), parameters).then((output) => settle(() => resolve(output)), fail);
        return;
      }
      // The heartbeat clock starts with the task and starts again with every SendTaskHeartbeat.
      const beat = () => {
        if (state.HeartbeatSeconds === undefined || settled) return;
        heartbeat?.abort();
        heartbeat = new AbortController();
        const silence = new StatesError('States.HeartbeatTimeout', `${name} had no heartbeat for ${state.HeartbeatSeconds} seconds`);
        void failAt(hooks.now() + state.HeartbeatSeconds * 1000, AbortSignal.any([heartbeat.signal, timers.signal]), silence);
      };
      holder.waiter = hooks.waitForToken(token!, beat);
      holder.waiter.outcome.then((output) => settle(() => resolve(output)), fail);
      const { FunctionName, Payload } = parameters as { FunctionName: string; Payload: Json };
      // The function's answer is not the task's result; only its failure ends the task. As on AWS,
      // the heartbeat clock starts once the function has returned.
      hooks.invoke(hooks.functionName(FunctionName), Payload).then(beat, fail);
    });
  }

  /** One attempt of a Map: its iterations in order, at most MaxConcurrency at once; one failure fails it. */
  async function runMap(
    state: State,
    frame: string,
    position: Position,
    effective: Json,
    context: Json,
    frameSignal: AbortSignal,
  ): Promise<Json> {
    const items = select(state.ItemsPath ?? '$', effective, context, 'ItemsPath');
    if (!Array.isArray(items)) throw new StatesError('States.Runtime', `ItemsPath '${state.ItemsPath ?? '$'}' must select an array`);
    const processor = (state.ItemProcessor ?? state.Iterator)!;
    const attempt = position.retries.reduce((sum, n) => sum + (n ?? 0), 0);
    const limit = state.MaxConcurrency && state.MaxConcurrency > 0 ? state.MaxConcurrency : items.length;
    const outputs: Json[] = new Array<Json>(items.length);
    const iterations = new AbortController();
    const iterationSignal = AbortSignal.any([frameSignal, iterations.signal]);
    let failure: StatesError | undefined;
    let nextIndex = 0;

    const runIteration = async (index: number) => {
      const child = `${frame}/${position.step}.${attempt}.${index}`;
      const done = journal.results.get(child);
      if (done) {
        if (done.ok) {
          outputs[index] = done.output;
          return;
        }
        throw new StatesError(done.error, done.cause);
      }
      const itemContext = { ...(context as Record<string, Json>), Map: { Item: { Index: index, Value: items[index]! } } };
      const iterationInput = state.ItemSelector !== undefined ? renderTemplate(state.ItemSelector, effective, itemContext, 'ItemSelector') : items[index]!;
      const traceBase = { state: position.state, frame: child, index };
      if (!journal.positions.has(child)) await hooks.trace({ type: 'MapIterationStarted', ...traceBase });
      try {
        outputs[index] = await runFrame(processor, child, iterationInput, iterationSignal, index);
      } catch (error) {
        if (error instanceof AbortedError || iterationSignal.aborted) throw new AbortedError('aborted');
        const states = asStatesError(error);
        await journal.saveResult(child, { ok: false, error: states.error, cause: states.causeText });
        await hooks.trace({ type: 'MapIterationFailed', ...traceBase, error: states.error, cause: states.causeText });
        throw states;
      }
      await journal.saveResult(child, { ok: true, output: outputs[index]! });
      await hooks.trace({ type: 'MapIterationSucceeded', ...traceBase });
    };

    const worker = async () => {
      while (!failure && nextIndex < items.length) {
        const index = nextIndex++;
        try {
          await runIteration(index);
        } catch (error) {
          if (error instanceof AbortedError) {
            if (frameSignal.aborted) throw error;
            return;
          }
          // The first failure fails the Map: no iteration starts after it, the running ones stop.
          failure ??= asStatesError(error);
          iterations.abort();
          return;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
    checkAborted(frameSignal);
    if (failure) throw failure;
    return outputs;
  }

  return runFrame(definition, 'root', input, signal);
}
