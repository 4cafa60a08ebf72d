import { NotFoundError, ValidationError } from './errors.ts';
import type { Fleet, PlanStore, ReleaseRecordStore, StepRecord, StepStore } from './ports.ts';
import { isTerminal, type Release } from './release.ts';
import { abortableSleep } from './release-feed.ts';

/**
 * A host's output during a release: every host-command step that ran on it, oldest first, read from
 * the fleet while the step runs (Fleet.readOutput), or from what the step recorded when it ended
 * (a fleet that cannot read output live).
 *
 * A position is `<step>.<where in the step>`: the index of the step among the host's steps, then the
 * fleet's own position (opaque) or, for recorded output, `L<lines read>`. Each line carries the
 * position just after it, so a reader that resumes from a line's position never sees it again.
 */

export interface HostOutputLineView {
  position: string;
  /** The step's kind: distribute, switch, revert, prune. */
  step: string;
  environment: string;
  stream: 'stdout' | 'stderr';
  text: string;
}

export interface HostOutputView {
  releaseId: string;
  host: string;
  lines: HostOutputLineView[];
  /** Pass as `after` (or Last-Event-ID) to read on from here. */
  next: string;
  /** True once the release ended and every line of every step on this host was read. */
  ended: boolean;
  /** Bytes skipped because a step's output grew past the kept limit (its start is cut). */
  cutBytes?: number;
}

export type HostOutputEvent =
  | { event: 'open'; id?: undefined; data: { releaseId: string; host: string } } |
  { event: 'line'; id: string; data: HostOutputLineView } |
  { event: 'cut'; id?: undefined; data: { bytes: number } } |
  { event: 'end'; id: string; data: { releaseId: string; host: string } };

export interface HostOutputDeps {
  store: Pick<ReleaseRecordStore, 'getRelease'> & Pick<StepStore, 'listSteps'> & Pick<PlanStore, 'getHostOutput'>;
  /** Absent where the API has no fleet: output is then what the steps recorded when they ended. */
  fleet?: Pick<Fleet, 'readOutput' | 'outputPollMs'>;
}

/** How long a long poll (`waitSeconds`) may wait: within API Gateway's 30-second limit. */
export const MAX_WAIT_SECONDS = 20;
/** How often a waiting reader looks at the fleet again (a file read locally, a GetLogEvents on AWS). */
export const OUTPUT_POLL_MS = 250;
/**
 * How often a waiting reader reads the release and its steps again (a GetItem and a Query): the
 * store's cost per open stream. Often while the reader has read every step there is (the host's
 * next step's first lines wait on it), seldom while a step's output is still coming.
 */
export const STEPS_REFRESH_MS = { caughtUp: 750, streaming: 3000 } as const;
/** An open stream ends after this long; the client reconnects with Last-Event-ID and misses nothing. */
export const MAX_STREAM_MS = 15 * 60_000;

const POSITION = /^(\d{1,6})\.(.*)$/;

function parsePosition(position: string | undefined): { step: number; within: string | undefined } {
  if (position === undefined || position === '') return { step: 0, within: undefined };
  const match = POSITION.exec(position);
  if (!match) {
    throw new ValidationError('after is not a position this endpoint gave out; start again without it', [
      { field: 'after', message: 'is not a position of this output' },
    ]);
  }
  return { step: Number(match[1]), within: match[2] === '' ? undefined : match[2] };
}

/** The command steps that ran on `host`, in the order they started. */
function hostSteps(steps: StepRecord[], host: string): StepRecord[] {
  return steps
    .filter((step) => step.commandId && step.hosts.includes(host))
    .sort((a, b) => (a.createdAt === b.createdAt ? (a.key < b.key ? -1 : 1) : a.createdAt < b.createdAt ? -1 : 1));
}

export function createHostOutput({ store, fleet }: HostOutputDeps) {
  async function requireRelease(releaseId: string): Promise<Release> {
    const release = await store.getRelease(releaseId);
    if (!release) throw new NotFoundError(`no release ${releaseId}`);
    return release;
  }

  /** Lines a step recorded when it ended, for fleets that cannot read output live. */
  async function recordedLines(releaseId: string, step: StepRecord, host: string) {
    const output = await store.getHostOutput(releaseId, step.environment, host, step.kind);
    const split = (text: string) => (text === '' ? [] : text.replace(/\n$/, '').split('\n'));
    return [
      ...split(output?.stdout ?? '').map((text) => ({ stream: 'stdout' as const, text })),
      ...split(output?.stderr ?? '').map((text) => ({ stream: 'stderr' as const, text })),
    ];
  }

  /** One read from `after` over the steps as they stand now. */
  async function readOnce(release: Release, steps: StepRecord[], host: string, after: string | undefined): Promise<HostOutputView> {
    const start = parsePosition(after);
    const lines: HostOutputLineView[] = [];
    let cutBytes = 0;
    let next = after ?? '0.';
    let caughtUp = true;
    for (let index = start.step; index < steps.length; index++) {
      const step = steps[index]!;
      const within = index === start.step ? start.within : undefined;
      const base = { step: step.kind, environment: step.environment };
      if (fleet?.readOutput) {
        const read = await fleet.readOutput(step.commandId!, host, within);
        lines.push(...read.lines.map((line) => ({ position: `${index}.${line.position}`, ...base, stream: line.stream, text: line.text })));
        cutBytes += read.cutBytes ?? 0;
        // A settled step whose read found nothing more is over, for fleets that cannot say so themselves.
        if (!read.ended && !(step.state !== 'running' && read.lines.length === 0)) {
          next = `${index}.${read.next}`;
          caughtUp = false;
          break;
        }
      } else {
        if (step.state === 'running') {
          caughtUp = false;
          break;
        }
        const skip = within && /^L\d+$/.test(within) ? Number(within.slice(1)) : 0;
        const recorded = await recordedLines(release.id, step, host);
        recorded.slice(skip).forEach((line, i) => lines.push({ position: `${index}.L${skip + i + 1}`, ...base, ...line }));
      }
      next = `${index + 1}.`;
    }
    return {
      releaseId: release.id,
      host,
      lines,
      next,
      ended: caughtUp && isTerminal(release.status) && steps.every((step) => step.state !== 'running'),
      ...(cutBytes > 0 ? { cutBytes } : {}),
    };
  }

  async function load(releaseId: string, host: string) {
    const release = await requireRelease(releaseId);
    return { release, steps: hostSteps(await store.listSteps(releaseId), host) };
  }

  /**
   * Follows the output from `after`: yields each read that has something (or says the end), and
   * between reads looks at the fleet every OUTPUT_POLL_MS (or the fleet's own pace) and at the
   * store as STEPS_REFRESH_MS says.
   */
  async function* follow(releaseId: string, host: string, after: string | undefined, until: number, signal?: AbortSignal) {
    let { release, steps } = await load(releaseId, host);
    let refreshedAt = Date.now();
    let position = after;
    for (;;) {
      const view = await readOnce(release, steps, host, position);
      position = view.next;
      if (view.lines.length > 0 || view.ended || view.cutBytes) yield view;
      if (view.ended || signal?.aborted || Date.now() >= until) return;
      await abortableSleep(fleet?.outputPollMs ?? OUTPUT_POLL_MS, signal);
      const refreshEvery = parsePosition(position).step >= steps.length ? STEPS_REFRESH_MS.caughtUp : STEPS_REFRESH_MS.streaming;
      if (Date.now() - refreshedAt >= refreshEvery) {
        ({ release, steps } = await load(releaseId, host));
        refreshedAt = Date.now();
      }
    }
  }

  return {
    /**
     * The output from `after`; with `waitSeconds`, waits up to that long for a first new line (a
     * long poll: what API Gateway, which buffers whole answers, can carry).
     */
    async read(releaseId: string, host: string, options: { after?: string; waitSeconds?: number } = {}): Promise<HostOutputView> {
      const wait = Math.min(options.waitSeconds ?? 0, MAX_WAIT_SECONDS);
      if (wait <= 0) {
        const { release, steps } = await load(releaseId, host);
        return readOnce(release, steps, host, options.after);
      }
      for await (const view of follow(releaseId, host, options.after, Date.now() + wait * 1000)) return view;
      const { release, steps } = await load(releaseId, host);
      return readOnce(release, steps, host, options.after);
    },

    /** The output as server-sent events, until the release ended and all was read (or MAX_STREAM_MS). */
    async* events(releaseId: string, host: string, after: string | undefined, signal?: AbortSignal): AsyncGenerator<HostOutputEvent> {
      parsePosition(after);
      await requireRelease(releaseId);
      // At once, so the answer starts (and a proxy sees it) before the host prints anything.
      yield { event: 'open', data: { releaseId, host } };
      for await (const view of follow(releaseId, host, after, Date.now() + MAX_STREAM_MS, signal)) {
        // No id of its own: a client resuming after it must still get the lines that follow.
        if (view.cutBytes) yield { event: 'cut', data: { bytes: view.cutBytes } };
        for (const line of view.lines) yield { event: 'line', id: line.position, data: line };
        if (view.ended) yield { event: 'end', id: view.next, data: { releaseId, host } };
      }
    },
  };
}

export type HostOutputService = ReturnType<typeof createHostOutput>;
