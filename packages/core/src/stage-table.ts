import { z } from 'zod';
import type { SlipwayErrorName } from './errors.ts';
import type { EnvironmentSummary, PlanSummary } from './plan.ts';
import { AppName, EnvironmentName, ReleaseId } from './schemas.ts';
import { BatchCallbackInput, BatchIndex, EnvironmentCallbackInput, StageFailureInput, TaskToken } from './stage-inputs.ts';
import type { ReleaseStages } from './stages.ts';

/**
 * The one place a stage is declared. From this table come the two state machines
 * (statemachines/*.asl.json, written by `npm run asl`), the stage handlers in functions/ and their
 * registry, the Lambdas the stack deploys (infra/definitions.ts) and each one's IAM statements
 * (infra/permissions.ts, from `uses`). Adding a stage: one entry here, one method on ReleaseStages,
 * and its place in the flow below; then `npm run asl`.
 */

/**
 * What a stage's Lambda reaches, in the domain's words. infra/permissions.ts turns each into IAM
 * statements, so a stage gets exactly what the ports it declares need.
 */
export const STAGE_PORTS = {
  releaseStore: 'reads and writes releases, plans, steps, locks and approvals (the table)',
  taskCallbacks: 'completes or fails waiting workflow tasks: its own, or a release it lets in',
  mail: 'sends approval requests (showing the file lists of what changes) and outcome mails',
  outcomeWebhooks: 'signs the outcome webhook of a release it ends (the webhook secret)',
  hostInventory: 'asks which targeted hosts can take commands',
  hostCommands: 'sends a command to hosts and reads each host\'s result',
  artifactDownloads: 'signs the artifact URL a host without the aws CLI downloads from',
  artifactManifests: 'reads an artifact once to list its files, and stores the list beside it',
  alarms: 'reads the state of the CloudWatch alarms an environment\'s analysis watches',
} as const;
export type StagePort = keyof typeof STAGE_PORTS;

export interface Retrier {
  ErrorEquals: string[];
  IntervalSeconds: number;
  MaxAttempts: number;
  BackoffRate: number;
}

const LAMBDA_SERVICE_ERRORS = ['Lambda.ServiceException', 'Lambda.AWSLambdaException', 'Lambda.SdkClientException', 'Lambda.TooManyRequestsException'];
/**
 * Retried in place. EnvironmentBusyError is retryable too, but a release waiting in line parks on a
 * callback token instead: a retry loop could exhaust the execution's 25,000 history events.
 */
const TRANSIENT_ERRORS: SlipwayErrorName[] = ['ConflictError', 'DependencyUnavailableError'];
export const STANDARD_RETRY: readonly Retrier[] = [
  { ErrorEquals: [...LAMBDA_SERVICE_ERRORS, ...TRANSIENT_ERRORS], IntervalSeconds: 2, MaxAttempts: 4, BackoffRate: 2 },
];

/** Step Functions' own limit is a year; the local executor's timers cap at about 24.8 days. */
const APPROVAL_BACKSTOP_SECONDS = 2_073_600;

/** The ReleaseStages methods that take `Input` as their one argument. */
type MethodAccepting<Input> = {
  [K in keyof ReleaseStages]: ReleaseStages[K] extends (input: Input) => Promise<unknown> ? K : never;
}[keyof ReleaseStages];

export interface StageSpec<Input extends z.ZodObject, Method> {
  /** What the stage does: the doc comment of its handler file. */
  summary: string;
  /** What its state hands it; a drift between the ASL and the handler fails loudly at the edge. */
  input: Input;
  /** The ReleaseStages method that does the work. */
  method: Method;
  uses: readonly StagePort[];
  /**
   * A callback task (`lambda:invoke.waitForTaskToken`): the state waits until someone completes
   * the token (the stage itself, a host command's status event, an approver). Follows the input.
   */
  callback: z.infer<Input> extends { taskToken: string } ? true : false;
  timeoutSeconds: number;
  /** Callback tasks on hosts: the sweep heartbeats a command still running, so a lost one fails. */
  heartbeatSeconds?: number;
  /**
   * Retried where it fails. Its Catch is the flow's business (below): where a failure goes depends
   * on where the stage sits, not on the stage.
   */
  retry: readonly Retrier[];
}

function stage<Input extends z.ZodObject, const Method extends MethodAccepting<z.infer<Input>>>(spec: StageSpec<Input, Method>) {
  return spec;
}

export const STAGES = {
  Prepare: stage({
    summary: 'Plans the release: each environment\'s hosts cut into batches by its strategy.',
    input: z.object({ releaseId: ReleaseId, app: AppName }),
    method: 'prepare',
    uses: ['releaseStore', 'hostInventory', 'artifactManifests'],
    callback: false,
    timeoutSeconds: 60,
    retry: STANDARD_RETRY,
  }),
  EnterEnvironment: stage({
    summary:
      'A callback task: takes the environment\'s lock and completes its own token at once, or (an app\n' +
      'with `queue: true`) parks the release in line on the token until whoever frees the lock lets it in.',
    input: EnvironmentCallbackInput,
    method: 'enterEnvironment',
    uses: ['releaseStore', 'taskCallbacks', 'mail'],
    callback: true,
    // It may wait in line as long as an approval gate may wait for its approvers.
    timeoutSeconds: APPROVAL_BACKSTOP_SECONDS,
    retry: STANDARD_RETRY,
  }),
  Distribute: stage({
    summary: 'Sends the artifact to every host of the environment; the task waits for the command to finish.',
    input: EnvironmentCallbackInput,
    method: 'distribute',
    uses: ['releaseStore', 'taskCallbacks', 'mail', 'hostCommands', 'artifactDownloads'],
    callback: true,
    timeoutSeconds: 3600,
    heartbeatSeconds: 600,
    retry: STANDARD_RETRY,
  }),
  AwaitApproval: stage({
    summary: 'The approval gate: records the request and waits for a decision.',
    input: EnvironmentCallbackInput,
    method: 'awaitApproval',
    uses: ['releaseStore', 'taskCallbacks', 'mail'],
    callback: true,
    timeoutSeconds: APPROVAL_BACKSTOP_SECONDS,
    retry: STANDARD_RETRY,
  }),
  SwitchBatch: stage({
    summary: 'Switches one batch of hosts to the release (hooks, atomic current, health check).',
    input: BatchCallbackInput,
    method: 'switchBatch',
    uses: ['releaseStore', 'taskCallbacks', 'mail', 'hostCommands'],
    callback: true,
    timeoutSeconds: 1800,
    heartbeatSeconds: 600,
    retry: STANDARD_RETRY,
  }),
  Watch: stage({
    summary:
      'What follows a batch\'s switch: the bake, then a timed pause, probing the environment\'s analysis\n' +
      'through both; answers when to ask again, or that a pause for a person (or nothing) comes next.',
    input: z.object({ releaseId: ReleaseId, environment: EnvironmentName, batchIndex: BatchIndex }),
    method: 'watch',
    uses: ['releaseStore', 'mail', 'alarms'],
    callback: false,
    // Probes with their own timeouts (at most 30 s each) run inside it.
    timeoutSeconds: 120,
    retry: STANDARD_RETRY,
  }),
  Pause: stage({
    summary:
      'A canary\'s pause: the task waits on its token until the release is promoted or cancelled, or (a timed\n' +
      'pause) until its TimeoutSecondsPath runs out and Watch looks again.',
    input: BatchCallbackInput,
    method: 'pause',
    uses: ['releaseStore', 'taskCallbacks', 'mail'],
    callback: true,
    timeoutSeconds: APPROVAL_BACKSTOP_SECONDS,
    retry: STANDARD_RETRY,
  }),
  CompleteEnvironment: stage({
    summary: 'Records the release live on the environment and frees its lock.',
    input: z.object({ releaseId: ReleaseId, environment: EnvironmentName }),
    method: 'completeEnvironment',
    uses: ['releaseStore', 'taskCallbacks', 'mail'],
    callback: false,
    timeoutSeconds: 60,
    retry: STANDARD_RETRY,
  }),
  PlanRevert: stage({
    summary: 'Lists the switched batches of a failed environment, newest first.',
    input: z.object({ releaseId: ReleaseId, environment: EnvironmentName, failure: StageFailureInput }),
    method: 'planRevert',
    uses: ['releaseStore'],
    callback: false,
    timeoutSeconds: 60,
    retry: STANDARD_RETRY,
  }),
  RevertBatch: stage({
    summary: 'Puts one batch of hosts back on what was live before.',
    input: BatchCallbackInput,
    method: 'revertBatch',
    uses: ['releaseStore', 'taskCallbacks', 'mail', 'hostCommands'],
    callback: true,
    timeoutSeconds: 1200,
    heartbeatSeconds: 600,
    retry: STANDARD_RETRY,
  }),
  FailEnvironment: stage({
    summary: 'Ends the release as failed (or rejected) in an environment and frees its lock.',
    input: z.object({ releaseId: ReleaseId, environment: EnvironmentName, failure: StageFailureInput }),
    method: 'failEnvironment',
    uses: ['releaseStore', 'taskCallbacks', 'mail', 'outcomeWebhooks'],
    callback: false,
    timeoutSeconds: 60,
    retry: STANDARD_RETRY,
  }),
  RecordFailure: stage({
    summary: 'The last word on a failed execution: the release ends and every lock it holds is freed.',
    input: z.object({ releaseId: ReleaseId, failure: StageFailureInput }),
    method: 'recordFailure',
    uses: ['releaseStore', 'taskCallbacks', 'mail', 'outcomeWebhooks'],
    callback: false,
    timeoutSeconds: 60,
    retry: STANDARD_RETRY,
  }),
  Prune: stage({
    summary: 'Removes old releases on every host beyond keepReleases, never the live or retained ones.',
    input: z.object({ taskToken: TaskToken, releaseId: ReleaseId }),
    method: 'prune',
    uses: ['releaseStore', 'taskCallbacks', 'mail', 'hostCommands'],
    callback: true,
    timeoutSeconds: 1200,
    heartbeatSeconds: 600,
    retry: STANDARD_RETRY,
  }),
  Finalize: stage({
    summary: 'Marks the release succeeded.',
    input: z.object({ releaseId: ReleaseId }),
    method: 'finalize',
    uses: ['releaseStore', 'taskCallbacks', 'mail', 'outcomeWebhooks'],
    callback: false,
    timeoutSeconds: 60,
    retry: STANDARD_RETRY,
  }),
} as const;

/** A stage by the name its state and its `${NameFunctionArn}` placeholder use. */
export type StageName = keyof typeof STAGES;
export const STAGE_NAMES = Object.keys(STAGES) as StageName[];
export type StageInput<N extends StageName> = z.infer<(typeof STAGES)[N]['input']>;
export const STAGE_INPUTS = Object.fromEntries(STAGE_NAMES.map((name) => [name, STAGES[name].input])) as {
  [N in StageName]: (typeof STAGES)[N]['input'];
};

/** Runs a stage's method on the stages of a runtime. */
export function runStage<N extends StageName>(stages: ReleaseStages, name: N, input: StageInput<N>): Promise<unknown> {
  const method = stages[STAGES[name].method] as (input: StageInput<N>) => Promise<unknown>;
  return method.call(stages, input);
}

/** The handler file of a stage in functions/, without `.ts`: `EnterEnvironment` is `enter-environment`. */
export function stageModuleName(name: StageName): string {
  return name.replace(/[A-Z]/g, (letter, at: number) => (at === 0 ? letter.toLowerCase() : `-${letter.toLowerCase()}`));
}

// ---------------------------------------------------------------------------------------------
// The flow: the state machines, built from the table with a few building blocks. The rollback
// machine is the release machine without the steps that copy the artifact to hosts (Distribute) and
// clean them up (Prune); both come from the same `releaseMachine`, so they cannot drift apart.

type Json = string | number | boolean | null | undefined | readonly Json[] | { readonly [key: string]: Json };
// Optional fields come from spreads that add nothing: no key ever holds undefined.
export type AslState = { [key: string]: Json };
export interface AslMachine {
  Comment: string;
  StartAt: string;
  States: Record<string, AslState>;
}

/** A piece of flow: the state it starts at and its states, the last one leading to `next`. */
interface Fragment {
  start: string;
  states: Record<string, AslState>;
}
/** A step of a chain, told where to go when it is done (`undefined`: the end of its branch). */
type Step = (next: string | undefined) => Fragment;

export const WAIT_FOR_TASK_TOKEN = 'arn:aws:states:::lambda:invoke.waitForTaskToken';
/** Filled in by the stack with each stage function's ARN (infra/definitions.ts), locally by the executor. */
export const functionArnPlaceholder = (name: StageName) => `\${${name}FunctionArn}`;

const transition = (next: string | undefined) => (next === undefined ? { End: true } : { Next: next });
const selected = (paths: Record<string, string>) => Object.fromEntries(Object.entries(paths).map(([field, path]) => [`${field}.$`, path]));
/** Catch `errors` (everything by default) and carry on at `next` with the error at `resultPath`. */
const catchAll = (resultPath: string, next: string, errors = ['States.ALL']) => [{ ErrorEquals: errors, ResultPath: resultPath, Next: next }];
/** The environment summary Prepare answers (PlanSummary), as each Map iteration holds it. */
const environmentField = (field: keyof EnvironmentSummary) => `$.environment.${field}`;
const planField = (field: keyof PlanSummary) => `$.plan.${field}`;

interface TaskOptions<N extends StageName> {
  /** Where each input field comes from, as a path into the state's input (the token is added for callbacks). */
  input: { [K in Exclude<keyof StageInput<N>, 'taskToken'> & string]-?: string };
  resultPath: string | null;
  outputPath?: string;
  comment?: string;
  catch?: { resultPath: string; next: string; errors?: string[] };
  /** A second state of the same stage needs its own name (the first is named after the stage). */
  stateName?: string;
  /** The timeout read from the state's input, in place of the stage's own (a timer that varies). */
  timeoutSecondsPath?: string;
}

function task<N extends StageName>(name: N, options: TaskOptions<N>): Step {
  const spec: StageSpec<z.ZodObject, unknown> = STAGES[name];
  const fields = Object.keys(spec.input.shape).filter((field) => field !== 'taskToken');
  const missing = fields.filter((field) => !(field in options.input));
  const unknown = Object.keys(options.input).filter((field) => !fields.includes(field));
  if (missing.length > 0 || unknown.length > 0) {
    throw new Error(`the ${name} state must hand its stage exactly its input: missing ${missing.join(', ') || 'none'}, unknown ${unknown.join(', ') || 'none'}`);
  }
  const parameters = selected(options.input);
  const stateName = options.stateName ?? name;
  return (next) => ({
    start: stateName,
    states: {
      [stateName]: {
        Type: 'Task',
        ...(options.comment ? { Comment: options.comment } : {}),
        ...(spec.callback
          ? { Resource: WAIT_FOR_TASK_TOKEN, Parameters: { FunctionName: functionArnPlaceholder(name), Payload: { 'taskToken.$': '$$.Task.Token', ...parameters } } }
          : { Resource: functionArnPlaceholder(name), Parameters: parameters }),
        ResultPath: options.resultPath,
        ...(options.outputPath ? { OutputPath: options.outputPath } : {}),
        ...(options.timeoutSecondsPath ? { TimeoutSecondsPath: options.timeoutSecondsPath } : { TimeoutSeconds: spec.timeoutSeconds }),
        ...(spec.heartbeatSeconds ? { HeartbeatSeconds: spec.heartbeatSeconds } : {}),
        Retry: spec.retry.map((retrier) => ({ ...retrier })),
        ...(options.catch ? { Catch: catchAll(options.catch.resultPath, options.catch.next, options.catch.errors) } : {}),
        ...transition(next),
      },
    },
  });
}

/** Steps one after the other, the last leading to `next`. */
function chain(steps: Step[], next: string | undefined): Fragment {
  const fragments: Fragment[] = [];
  let following = next;
  for (const step of [...steps].reverse()) {
    const fragment = step(following);
    fragments.unshift(fragment);
    following = fragment.start;
  }
  return { start: fragments[0]!.start, states: Object.assign({}, ...fragments.map((fragment) => fragment.states)) };
}

/** A state that is not a step of a chain (an end, a recovery path): named and as written. */
const state = (name: string, body: AslState): Fragment => ({ start: name, states: { [name]: body } });
const withStates = (main: Fragment, ...others: Fragment[]): Fragment => ({
  start: main.start,
  states: Object.assign({}, main.states, ...others.map((other) => other.states)),
});

interface MapOptions {
  itemsPath: string;
  itemSelector: Record<string, string>;
  processor: Fragment;
  catch?: { resultPath: string; next: string };
}

/** One item at a time: environments in pipeline order, batches in switch (or revert) order. */
function map(name: string, options: MapOptions): Step {
  return (next) =>
    state(name, {
      Type: 'Map',
      ItemsPath: options.itemsPath,
      MaxConcurrency: 1,
      ItemSelector: selected(options.itemSelector),
      ItemProcessor: { ProcessorConfig: { Mode: 'INLINE' }, StartAt: options.processor.start, States: options.processor.states },
      ResultPath: null,
      ...(options.catch ? { Catch: catchAll(options.catch.resultPath, options.catch.next) } : {}),
      ...transition(next),
    });
}

/** Goes to `then` when the condition holds, else straight on. */
function branch(name: string, condition: Record<string, Json>, then: Step): Step {
  return (next) => {
    if (next === undefined) throw new Error(`${name} needs a state to go to when its condition does not hold`);
    const taken = then(next);
    return withStates(state(name, { Type: 'Choice', Choices: [{ ...condition, Next: taken.start }], Default: next }), taken);
  };
}

const fail = (name: string) => state(name, { Type: 'Fail', ErrorPath: '$.failure.Error', CausePath: '$.failure.Cause' });

const REVERT = { resultPath: '$.failure', next: 'PlanRevert' };
const environmentInput = { releaseId: '$.releaseId', environment: environmentField('name') };
/** Inside a batch Map iteration the environment is its name, selected by the Map. */
const batchInput = { releaseId: '$.releaseId', environment: '$.environment', batchIndex: '$.batchIndex' };

const enterEnvironment = task('EnterEnvironment', {
  comment:
    'Takes the environment\'s lock and completes its own token at once with {batches: [0..n-1]} into $.plan: the batch indexes SwitchBatches iterates over (each stage looks a batch\'s hosts up in the stored plan). For an app with queue: true whose environment is held, the release waits in line (FIFO by open time) on this token, costing no history while it waits; whoever frees the lock, or the sweep, lets the first in line in. No retry loop: a long wait cannot exhaust the execution\'s history.',
  input: environmentInput,
  resultPath: '$.plan',
  catch: REVERT,
});

const distribute = task('Distribute', { input: environmentInput, resultPath: null, catch: REVERT });

const approvalGate = branch(
  'ApprovalRequired',
  { Variable: environmentField('approval'), BooleanEquals: true },
  task('AwaitApproval', {
    comment: 'Waits for the approvers. The gate\'s own expiry (approval.timeoutHours) is enforced by Slipway; this is only a backstop.',
    input: environmentInput,
    resultPath: null,
    catch: REVERT,
  }),
);

/**
 * After a batch's switch, when the environment bakes or pauses: Watch answers when to ask it again
 * (the Wait is the bake, or the time to the next probe of the analysis), or that a pause comes next:
 * for a person (the Pause task, a callback), or timed (the same callback with a timeout: a promote
 * completes its token at once, and its timeout, the pause's end or the next probe, leads back to
 * Watch), or that the next batch may start.
 */
const watch: Step = branch('WatchRequired', { Variable: '$.watch', BooleanEquals: true }, (next) => {
  if (next === undefined) throw new Error('Watch needs a state to go to when the batch is done');
  const pause = task('Pause', {
    comment: 'Waits for a person to promote the release (POST /v1/releases/{id}/promote) or cancel it; costs nothing while it waits.',
    input: batchInput,
    resultPath: null,
  })(next);
  const timedPause = task('Pause', {
    stateName: 'TimedPause',
    comment:
      'A timed pause: waits on its token for a promote (or a cancel) until $.watched.seconds run out (the pause\'s end, or the next probe of the analysis), then Watch looks again. A promote ends it at once, and no process of ours keeps the time: Step Functions times the task out.',
    input: batchInput,
    resultPath: null,
    timeoutSecondsPath: '$.watched.seconds',
    catch: { resultPath: '$.watched', next: 'Watch', errors: ['States.Timeout'] },
  })(next);
  return withStates(
    task('Watch', { input: batchInput, resultPath: '$.watched' })('WatchNext'),
    state('WatchNext', {
      Type: 'Choice',
      Choices: [
        { Variable: '$.watched.next', StringEquals: 'wait', Next: 'Bake' },
        { Variable: '$.watched.next', StringEquals: 'pause', Next: pause.start },
        { Variable: '$.watched.next', StringEquals: 'timed-pause', Next: timedPause.start },
      ],
      Default: next,
    }),
    state('Bake', { Type: 'Wait', Comment: 'The bake, or the time to the next probe of the analysis: then Watch again.', TimestampPath: '$.watched.until', Next: 'Watch' }),
    pause,
    timedPause,
  );
});

const switchBatches = map('SwitchBatches', {
  itemsPath: '$.plan.batches',
  itemSelector: { releaseId: '$.releaseId', environment: environmentField('name'), watch: environmentField('watch'), batchIndex: '$$.Map.Item.Value' },
  processor: withStates(
    chain([task('SwitchBatch', { input: batchInput, resultPath: null }), watch], 'BatchDone'),
    state('BatchDone', {
      Type: 'Succeed',
      Comment: 'Each iteration\'s output is its batch index only: the Map collects them all (5,000 batches are about 24 KB).',
      OutputPath: '$.batchIndex',
    }),
  ),
  catch: REVERT,
});

const completeEnvironment = task('CompleteEnvironment', { input: environmentInput, resultPath: null, outputPath: '$.environment', catch: REVERT });

/** Any failure in an environment: put its switched batches back, newest first, and end the release. */
const revertEnvironment = withStates(
  chain(
    [
      task('PlanRevert', {
        comment:
          'Answers {batches: [...]}: the indexes of the batches whose switch was sent, newest first. It replaces $.plan (the switch order is done with), so the state never holds two lists; RevertBatch reads each batch\'s hosts from its switch step.',
        input: { ...environmentInput, failure: '$.failure' },
        resultPath: '$.plan',
        catch: { resultPath: '$.revertFailure', next: 'FailEnvironment' },
      }),
      map('RevertBatches', {
        itemsPath: '$.plan.batches',
        itemSelector: { releaseId: '$.releaseId', environment: environmentField('name'), batchIndex: '$$.Map.Item.Value' },
        processor: withStates(
          task('RevertBatch', { input: batchInput, resultPath: null, outputPath: '$.batchIndex', catch: { resultPath: '$.revertFailure', next: 'RevertBatchFailed' } })(undefined),
          state('RevertBatchFailed', {
            Type: 'Pass',
            Comment: 'A host that cannot be reverted is recorded failed; the other batches are still put back.',
            OutputPath: '$.batchIndex',
            End: true,
          }),
        ),
      }),
      task('FailEnvironment', { input: { ...environmentInput, failure: '$.failure' }, resultPath: null }),
    ],
    'EnvironmentFailed',
  ),
  fail('EnvironmentFailed'),
);

const RECORD_FAILURE = { resultPath: '$.failure', next: 'RecordFailure' };

interface MachineShape {
  comment: string;
  /** Copies the artifact to every host before the gate and the switch (a rollback's is already there). */
  distributes: boolean;
  /** Removes releases beyond keepReleases afterwards (a rollback adds none). */
  prunes: boolean;
}

function releaseMachine(shape: MachineShape): AslMachine {
  const environments = map('Environments', {
    itemsPath: planField('environments'),
    itemSelector: { releaseId: '$.releaseId', app: '$.app', environment: '$$.Map.Item.Value' },
    processor: withStates(
      chain([enterEnvironment, ...(shape.distributes ? [distribute] : []), approvalGate, switchBatches, completeEnvironment], undefined),
      revertEnvironment,
    ),
    catch: RECORD_FAILURE,
  });
  const flow = withStates(
    chain(
      [
        task('Prepare', {
          comment:
            'Plans the release and stores the plan; answers one small summary per environment ({name, approval, bakeSeconds, batchCount}). No host id ever travels in this machine\'s data: each stage reads its hosts from the stored plan.',
          input: { releaseId: '$.releaseId', app: '$.app' },
          resultPath: '$.plan',
          catch: RECORD_FAILURE,
        }),
        environments,
        ...(shape.prunes ? [task('Prune', { input: { releaseId: '$.releaseId' }, resultPath: null, catch: { resultPath: '$.pruneFailure', next: 'Finalize' } })] : []),
        task('Finalize', { input: { releaseId: '$.releaseId' }, resultPath: '$.result', catch: RECORD_FAILURE }),
      ],
      'Succeeded',
    ),
    state('Succeeded', { Type: 'Succeed' }),
    task('RecordFailure', { input: { releaseId: '$.releaseId', failure: '$.failure' }, resultPath: null })('Failed'),
    fail('Failed'),
  );
  return { Comment: shape.comment, StartAt: flow.start, States: flow.states };
}

/** The state machines by file name (statemachines/<name>.asl.json). */
export const STATE_MACHINES = {
  release: () =>
    releaseMachine({
      comment:
        'Slipway release. For each environment in order: distribute to every host, wait for approval when the environment asks for one, switch batch by batch (bake after each when configured). Any failure in an environment reverts its switched hosts, newest batch first, and ends the release. Then prune old releases and finalize.',
      distributes: true,
      prunes: true,
    }),
  rollback: () =>
    releaseMachine({
      comment:
        'Slipway rollback: switch every host of one environment back to a release already on its hosts, batch by batch with the environment\'s strategy and health checks; an approval gate only when the environment asks for one on rollbacks. No download, no postDeploy. A failure puts the switched batches back where they were.',
      distributes: false,
      prunes: false,
    }),
} as const;
