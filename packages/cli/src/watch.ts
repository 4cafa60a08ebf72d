import type { ReleaseView } from '@slipway/core';
import type { ApiClient } from './client.ts';

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
