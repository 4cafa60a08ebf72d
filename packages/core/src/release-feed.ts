import { NotFoundError } from './errors.ts';
import type { EventStore, ReleaseRecordStore } from './ports.ts';
import { isTerminal } from './release.ts';
import type { ReleaseView } from './releases.ts';

/**
 * A release's changes as a stream, for the dashboard and `slipway release watch`: the whole release
 * view each time it changed, until it ends.
 *
 * The server's cost per open stream is bounded: one GetItem of the release and one Query of its
 * events every FEED_POLL_MS (a cheap fingerprint), the full view (a handful of reads) only when the
 * fingerprint moved or every FEED_REFRESH_MS, and the stream closes when the release ends or after
 * MAX_FEED_MS (the client reconnects).
 */

export const FEED_POLL_MS = 1000;
/** Host statuses move without an event of their own until the step settles: looked at this often anyway. */
export const FEED_REFRESH_MS = 5000;
export const MAX_FEED_MS = 15 * 60_000;

export type ReleaseFeedEvent =
  | { event: 'release'; id: string; data: ReleaseView } |
  { event: 'end'; id: string; data: { id: string; status: string } };

export interface ReleaseFeedDeps {
  store: Pick<ReleaseRecordStore, 'getRelease'> & Pick<EventStore, 'listEvents'>;
  view(id: string): Promise<ReleaseView>;
  /** Waits between looks; ends early when `signal` aborts. */
  sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Waits `ms`, or less when `signal` aborts; never rejects. The live streams' one wait. */
export const abortableSleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const stop = () => {
      clearTimeout(timer);
      resolve();
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', stop);
      resolve();
    }, ms);
    signal?.addEventListener('abort', stop, { once: true });
  });

export function createReleaseFeed({ store, view, sleep = abortableSleep }: ReleaseFeedDeps) {
  return {
    async* events(id: string, signal?: AbortSignal): AsyncGenerator<ReleaseFeedEvent> {
      const until = Date.now() + MAX_FEED_MS;
      let fingerprint = '';
      let viewedAt = 0;
      let sequence = 0;
      let lastView = '';
      for (;;) {
        const release = await store.getRelease(id);
        if (!release) throw new NotFoundError(`no release ${id}`);
        const events = await store.listEvents(id);
        const now = `${release.status}|${release.updatedAt}|${events.length}|${events.at(-1)?.id ?? ''}`;
        if (now !== fingerprint || Date.now() - viewedAt >= FEED_REFRESH_MS) {
          const current = await view(id);
          // The id only counts answers; the client never resumes a view (it takes the newest).
          const text = JSON.stringify(current);
          if (text !== lastView) {
            sequence += 1;
            yield { event: 'release', id: String(sequence), data: current };
          }
          lastView = text;
          fingerprint = now;
          viewedAt = Date.now();
        }
        if (isTerminal(release.status)) {
          yield { event: 'end', id: String(sequence), data: { id, status: release.status } };
          return;
        }
        if (signal?.aborted || Date.now() >= until) return;
        await sleep(FEED_POLL_MS, signal);
      }
    },
  };
}

export type ReleaseFeed = ReturnType<typeof createReleaseFeed>;
