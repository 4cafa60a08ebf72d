import type { HostOutputView, HostView, ReleaseView } from '@slipway/core';
import type { ApiClient } from './client.ts';
import type { FailedOutput } from './output.ts';

export interface WatchIo {
  out(line: string): void;
}

const TERMINAL = new Set(['succeeded', 'failed', 'rejected', 'cancelled']);

function clock(at: Date): string {
  return at.toISOString().slice(11, 19);
}

/**
 * Follows a release until it ends, printing one line per change: the release, each environment,
 * each host. Returns the final release.
 */
export async function watchRelease(
  client: ApiClient,
  id: string,
  io: WatchIo,
  options: { intervalMs: number; now?: () => Date } = { intervalMs: 1000 },
): Promise<ReleaseView> {
  const now = options.now ?? (() => new Date());
  const seen = new Map<string, string>();
  const started = now();
  const change = (key: string, value: string, line: () => string) => {
    if (seen.get(key) === value) return;
    seen.set(key, value);
    io.out(`${clock(now())}  ${line()}`);
  };
  for (;;) {
    const release = await client.request<ReleaseView>('GET', `/v1/releases/${encodeURIComponent(id)}`);
    change('release', release.status, () => `release ${release.id} (${release.app} ${release.version}): ${release.status}`);
    for (const env of release.environments) {
      const healthy = env.hosts.filter((h) => h.status === 'healthy').length;
      change(`env:${env.environment}`, `${env.status}:${healthy}`, () => {
        const progress = env.hosts.length ? ` [${'#'.repeat(healthy)}${'.'.repeat(env.hosts.length - healthy)}] ${healthy}/${env.hosts.length} healthy` : '';
        return `${env.environment}: ${env.status}${progress}`;
      });
      for (const host of env.hosts) {
        change(`host:${env.environment}:${host.host}`, host.status, () => `  ${env.environment}  ${host.host}  ${host.status}`);
      }
    }
    if (TERMINAL.has(release.status)) {
      const seconds = ((now().getTime() - started.getTime()) / 1000).toFixed(1);
      io.out(`${release.status === 'succeeded' ? 'done' : 'ended'}: ${release.status} after ${seconds}s of watching${release.reason ? `\nreason: ${release.reason}` : ''}`);
      return release;
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
}

/** How long each request of `watch --host` waits for a new line: a long poll, which API Gateway carries too. */
const OUTPUT_WAIT_SECONDS = 20;

/**
 * Follows what one host prints during a release, line by line, until the release ended and all was
 * read. Long polls (`waitSeconds`), so it works the same through API Gateway, which cannot stream.
 */
export async function watchHostOutput(
  client: ApiClient,
  id: string,
  host: string,
  io: WatchIo & { err(line: string): void },
): Promise<HostOutputView> {
  let after: string | undefined;
  for (;;) {
    const query = new URLSearchParams({ waitSeconds: String(OUTPUT_WAIT_SECONDS), ...(after ? { after } : {}) });
    const where = `/v1/releases/${encodeURIComponent(id)}/hosts/${encodeURIComponent(host)}/output?${query}`;
    const view = await client.request<HostOutputView>('GET', where);
    if (view.cutBytes) io.err(`[${view.cutBytes} bytes of output cut: only the end of each step's output is kept]`);
    for (const line of view.lines) (line.stream === 'stderr' ? io.err : io.out)(`${line.step.padEnd(10)} ${line.text}`);
    after = view.next;
    if (view.ended) return view;
  }
}

/** How many failed hosts `release show` reads the output of, and how many of their last lines it prints. */
export const FAILED_HOSTS_SHOWN = 5;
const FAILED_LINES_SHOWN = 5;

/**
 * The last lines each failed step printed, for the first FAILED_HOSTS_SHOWN hosts with one: the
 * release read carries exit codes, not output, so it is read from each host's output route.
 */
export async function readFailedOutput(client: ApiClient, release: ReleaseView): Promise<FailedOutput> {
  const failed = release.environments
    .flatMap((env) => env.hosts.flatMap((host) => {
      const step = Object.entries(host.steps).find(([, s]) => s.exitCode !== 0);
      return step ? [{ environment: env.environment, host: host.host, step: step[0] }] : [];
    }))
    .slice(0, FAILED_HOSTS_SHOWN);
  const read = new Map<string, { step: string; lines: string[] }>();
  for (const { environment, host, step } of failed) {
    const lines: string[] = [];
    let after: string | undefined;
    // Every page there is now: the step has ended, so its lines are all there.
    for (let page = 0; page < 20; page++) {
      const query = after ? `?${new URLSearchParams({ after })}` : '';
      const view = await client.request<HostOutputView>('GET', `/v1/releases/${encodeURIComponent(release.id)}/hosts/${encodeURIComponent(host)}/output${query}`);
      lines.push(...view.lines.filter((line) => line.environment === environment && line.step === step).map((line) => `${line.stream === 'stderr' ? '!' : ' '} ${line.text}`));
      if (view.ended || view.lines.length === 0 || view.next === after) break;
      after = view.next;
    }
    read.set(`${environment}/${host}`, { step, lines: lines.slice(-FAILED_LINES_SHOWN) });
  }
  return read;
}

/** `slipway hosts`: one line per host, drift first in the eye. */
export function printHosts(hosts: HostView[], io: WatchIo) {
  if (hosts.length === 0) {
    io.out('no hosts');
    return;
  }
  const expected = hosts[0]!.expected;
  io.out(`live release: ${expected ?? 'none'}`);
  const width = Math.max(4, ...hosts.map((h) => h.host.length));
  for (const h of hosts) {
    const current = h.current ? `${h.current.version} (${h.current.releaseId})` : 'no release';
    const seen = h.checkedAt ? `seen ${h.checkedAt} by ${h.source}` : 'never seen';
    const flag = h.drift ? 'DRIFT' : 'ok   ';
    io.out(`${flag}  ${h.host.padEnd(width)}  ${current}  keeps ${h.retained.length}  ${seen}${h.unreachable ? `  unreachable: ${h.unreachable}` : ''}`);
  }
  const drifting = hosts.filter((h) => h.drift).length;
  io.out(drifting ? `${drifting} of ${hosts.length} hosts drift` : `all ${hosts.length} hosts on the live release`);
}
