import { NotFoundError, StaleTaskTokenError } from '../errors.ts';
import type { ArtifactManifest } from '../manifest.ts';
import type {
  ArtifactStore,
  ExecutionHistory,
  ExecutionKind,
  Fleet,
  HostCommand,
  HostInvocation,
  InvocationStatus,
  Mail,
  Mailer,
  Notifier,
  ReleaseExecutionInput,
  ResolvedTargets,
  StoredObject,
  Targets,
  WebhookDelivery,
  Workflow,
} from '../ports.ts';

/**
 * In-memory stand-ins for the ports that are not stores, for unit tests of the services: each
 * records what it was asked and answers what the test sets up. None waits, none touches a network.
 */

/** How a task's token was completed: what the state machine would see. */
export type TaskOutcome =
  | { token: string; kind: 'success'; output: Record<string, unknown> } |
  { token: string; kind: 'failure'; error: string; cause: string };

/**
 * Step Functions as far as the stages see it: a token completes once, and completing a token no
 * task waits on (completed before, or made stale with `expireToken`) throws StaleTaskTokenError.
 */
export function createFakeWorkflow() {
  const started = new Map<string, ReleaseExecutionInput & { executionId: string; at: number }>();
  const outcomes: TaskOutcome[] = [];
  const stale = new Set<string>();
  const heartbeats: string[] = [];
  const stopped: { releaseId: string; cause: string; kind?: ExecutionKind }[] = [];
  let starts = 0;

  function complete(outcome: TaskOutcome) {
    if (stale.has(outcome.token)) throw new StaleTaskTokenError('no task waits on this token any more');
    stale.add(outcome.token);
    outcomes.push(outcome);
  }

  const workflow: Workflow & {
    started: typeof started;
    outcomes: TaskOutcome[];
    heartbeats: string[];
    stopped: typeof stopped;
    /** The outcome sent on `token`, if any. */
    outcomeOf(token: string): TaskOutcome | undefined;
    /** No task waits on `token` any more (it timed out, or the executor restarted). */
    expireToken(token: string): void;
    forget(releaseId: string): Promise<void>;
  } = {
    started,
    outcomes,
    heartbeats,
    stopped,
    async startRelease(input) {
      const there = started.get(input.releaseId);
      if (there) return { executionId: there.executionId };
      starts += 1;
      const executionId = `execution-${input.releaseId}`;
      started.set(input.releaseId, { ...input, executionId, at: starts });
      return { executionId };
    },
    async sendTaskSuccess(token, output) {
      complete({ token, kind: 'success', output });
    },
    async sendTaskFailure(token, error, cause) {
      complete({ token, kind: 'failure', error, cause });
    },
    async sendTaskHeartbeat(token) {
      if (stale.has(token)) throw new StaleTaskTokenError('no task waits on this token any more');
      heartbeats.push(token);
    },
    async stopRelease(releaseId, cause, kind) {
      stopped.push({ releaseId, cause, ...(kind ? { kind } : {}) });
    },
    async releaseHistory(releaseId): Promise<ExecutionHistory | undefined> {
      const execution = started.get(releaseId);
      if (!execution) return undefined;
      const stop = stopped.find((s) => s.releaseId === releaseId);
      return { executionId: execution.executionId, status: stop ? 'ABORTED' : 'RUNNING', startedAt: '2026-01-01T00:00:00.000Z', events: [] };
    },
    async forget(releaseId) {
      started.delete(releaseId);
    },
    outcomeOf: (token) => outcomes.find((o) => o.token === token),
    expireToken: (token) => void stale.add(token),
  };
  return workflow;
}
export type FakeWorkflow = ReturnType<typeof createFakeWorkflow>;

/**
 * Hosts that run nothing: `send` records the command (once per command id), and `results` answers
 * each host's outcome as `outcome` says at the time of asking (`running` keeps the command unfinished).
 */
export function createFakeFleet(options: { resolve?: (targets: Targets) => ResolvedTargets } = {}) {
  const commands = new Map<string, HostCommand>();
  const sends: HostCommand[] = [];
  const fleet: Fleet & {
    commands: Map<string, HostCommand>;
    /** Every call of `send`, repeats included. */
    sends: HostCommand[];
    outcome: (command: HostCommand, host: string) => InvocationStatus | 'running';
    /** The command sent last whose script is of `kind`. */
    last(kind: string): HostCommand | undefined;
  } = {
    commands,
    sends,
    outcome: () => 'success',
    async resolveTargets(targets) {
      if (options.resolve) return options.resolve(targets);
      if ('hosts' in targets) return { hosts: [...targets.hosts], unreachable: [] };
      return { hosts: ['i-web-1', 'i-web-2', 'i-web-3', 'i-web-4'], unreachable: [] };
    },
    async send(command) {
      sends.push(command);
      if (!commands.has(command.commandId)) commands.set(command.commandId, structuredClone(command));
    },
    async results(commandId) {
      const command = commands.get(commandId);
      if (!command) return { finished: false, invocations: [] };
      const invocations: HostInvocation[] = [];
      for (const host of command.hosts) {
        const status = fleet.outcome(command, host);
        if (status === 'running') continue;
        invocations.push({
          host,
          status,
          exitCode: status === 'success' ? 0 : status === 'failed' ? 1 : null,
          stdout: `${command.script.kind} on ${host}`,
          stderr: status === 'success' ? '' : `${command.script.kind} broke on ${host}`,
          startedAt: '2026-01-01T00:00:00.000Z',
          endedAt: '2026-01-01T00:00:01.000Z',
        });
      }
      return { finished: invocations.length === command.hosts.length, invocations };
    },
    last: (kind) => [...commands.values()].filter((c) => c.script.kind === kind).at(-1),
  };
  return fleet;
}
export type FakeFleet = ReturnType<typeof createFakeFleet>;

/** An outbox: `sent` holds every mail; while `refuse` is set, `send` throws it and sends nothing. */
export function createFakeMailer() {
  const mailer: Mailer & { sent: Mail[]; refuse: Error | undefined } = {
    sent: [],
    refuse: undefined,
    async send(mail) {
      if (mailer.refuse) throw mailer.refuse;
      mailer.sent.push(structuredClone(mail));
    },
  };
  return mailer;
}
export type FakeMailer = ReturnType<typeof createFakeMailer>;

/** A webhook endpoint that takes every post (or answers `answer`'s delivery), recording them. */
export function createFakeNotifier() {
  const notifier: Notifier & {
    posts: { url: string; payload: Record<string, unknown>; deliveryId: string }[];
    answer: (deliveryId: string) => WebhookDelivery;
  } = {
    posts: [],
    answer: (deliveryId) => ({ ok: true, deliveryId, attempts: 1, httpStatus: 200 }),
    async post(url, payload, deliveryId) {
      notifier.posts.push({ url, payload: structuredClone(payload), deliveryId });
      return notifier.answer(deliveryId);
    },
  };
  return notifier;
}
export type FakeNotifier = ReturnType<typeof createFakeNotifier>;

/** Objects as their sha256 and size (and bytes, when a test gives them); `store` puts one there, as an upload would. */
export function createFakeArtifactStore() {
  const objects = new Map<string, StoredObject & { sha256: string; bytes?: Uint8Array }>();
  const manifests = new Map<string, ArtifactManifest>();
  let etags = 0;
  const store: ArtifactStore & {
    objects: typeof objects;
    manifests: typeof manifests;
    store(key: string, sha256: string, size: number, bytes?: Uint8Array): void;
  } = {
    objects,
    manifests,
    store(key, sha256, size, bytes) {
      etags += 1;
      objects.set(key, { sha256, size, etag: `"etag-${etags}"`, ...(bytes ? { bytes } : {}) });
    },
    async read(key) {
      const object = objects.get(key);
      if (!object) throw new NotFoundError(`no object at ${key}`);
      const bytes = object.bytes ?? new Uint8Array(0);
      return (async function* () {
        yield bytes;
      })();
    },
    async getManifest(key) {
      return manifests.get(key);
    },
    async putManifest(key, manifest) {
      manifests.set(key, manifest);
    },
    async presignUpload(key, _sha256, _size, expiresInSeconds) {
      return { url: `memory://upload/${key}`, headers: {}, expiresAt: new Date(Date.UTC(2026, 0, 1) + expiresInSeconds * 1000).toISOString() };
    },
    async presignDownload(key, expiresInSeconds) {
      return `memory://download/${key}?expires=${expiresInSeconds}`;
    },
    async head(key) {
      const object = objects.get(key);
      return object ? { size: object.size, etag: object.etag } : undefined;
    },
    /** Stored by its sha256 alone, as S3 keeps a checksum; stored with its bytes, as the local S3, which keeps none. */
    async storedSha256(key) {
      const object = objects.get(key);
      if (!object) throw new Error(`no object at ${key}`);
      return object.bytes ? undefined : object.sha256;
    },
    async delete(key) {
      objects.delete(key);
      manifests.delete(key);
    },
  };
  return store;
}
export type FakeArtifactStore = ReturnType<typeof createFakeArtifactStore>;

/** A clock tests move by hand, for leases, bakes and expiry without sleeping. */
export function createManualClock(start = '2026-01-01T00:00:00.000Z') {
  let now = new Date(start).getTime();
  return {
    now: () => new Date(now),
    advance(ms: number) {
      now += ms;
    },
    set(iso: string) {
      now = new Date(iso).getTime();
    },
  };
}
export type ManualClock = ReturnType<typeof createManualClock>;

/** Ids in creation order (the ULID property the stores and listings rely on), readable in a failure. */
export function createSequentialIds(prefix = '01') {
  let n = 0;
  return { next: () => `${prefix}${String(++n).padStart(24, '0')}` };
}
