/** How the CLI shows the API's answers to a person; `--json` bypasses all of this. */
import type { AuditEntry, CreatedToken, ExecutionHistory, Page, ReleaseSummary, ReleaseView, TokenView } from '@slipway/core';

export interface Io {
  out(line: string): void;
  err(line: string): void;
}

/** What a failed step printed last, by `<environment>/<host>`: read from the host's output route. */
export type FailedOutput = Map<string, { step: string; lines: string[] }>;

export function printRelease(release: ReleaseView, io: Io, failedOutput: FailedOutput = new Map()) {
  io.out(`release ${release.id}  ${release.app} ${release.version}  ${release.status}`);
  io.out(`  opened by ${release.openedBy} at ${release.createdAt}`);
  io.out(`  artifact ${release.artifact.key} (${release.artifact.size} bytes)`);
  if (release.description) io.out(`  ${release.description.split('\n').join('\n  ')}`);
  if (release.reason) io.out(`  reason: ${release.reason}`);
  if (release.pause) {
    const until = release.pause.resumeAt ? `, goes on by itself at ${release.pause.resumeAt}` : '; slipway release promote ' + release.id + ' goes on';
    io.out(`  paused in ${release.pause.environment} after batch ${release.pause.batch} since ${release.pause.pausedAt}${until}`);
  }
  if (release.queuePosition) io.out(`  waiting in line for ${release.queuedFor}: position ${release.queuePosition} (1 is next)`);
  for (const env of release.environments) {
    io.out(`  ${env.environment}: ${env.status}`);
    for (const host of env.hosts) {
      const steps = Object.entries(host.steps)
        .sort(([, a], [, b]) => a.startedAt.localeCompare(b.startedAt))
        .map(([kind, step]) => `${kind} exit ${step.exitCode ?? '-'}`);
      io.out(`    ${host.host}: ${host.status}${steps.length ? `  (${steps.join(', ')})` : ''}`);
      const failed = failedOutput.get(`${env.environment}/${host.host}`);
      for (const line of failed?.lines ?? []) io.out(`      ${failed!.step} | ${line}`);
    }
  }
  io.out('  events:');
  for (const event of release.events) io.out(`    ${event.at}  ${event.type}  by ${event.actor}`);
}

function printMore(page: { nextCursor?: string }, io: Io) {
  if (page.nextCursor) io.out(`more: --cursor ${page.nextCursor}`);
}

export function printReleases(page: Page<ReleaseSummary>, io: Io) {
  for (const r of page.items) io.out(`${r.id}  ${r.app}  ${r.version}  ${r.status}  ${r.createdAt}  ${r.openedBy}`);
  if (page.items.length === 0) io.out('no releases');
  printMore(page, io);
}

export function printHistory(history: ExecutionHistory, io: Io) {
  const stopped = history.stoppedAt ? `, stopped ${history.stoppedAt}` : '';
  io.out(`execution ${history.executionId}  ${history.status}  (started ${history.startedAt}${stopped})`);
  for (const event of history.events) {
    const state = event.state ? `  ${event.state}${event.index === undefined ? '' : `[${event.index}]`}` : '';
    const error = event.error ? `  ${event.error}${event.cause ? `: ${event.cause}` : ''}` : '';
    io.out(`  ${event.at}  ${event.type}${state}${error}`);
  }
}

export function printAudit(page: Page<AuditEntry>, io: Io) {
  for (const entry of page.items) {
    const details = Object.keys(entry.details).length ? `  ${JSON.stringify(entry.details)}` : '';
    io.out(`${entry.at}  ${entry.actor}  ${entry.action}  ${entry.subject}${details}`);
  }
  if (page.items.length === 0) io.out('no audit entries');
  printMore(page, io);
}

export function printCreatedToken(created: CreatedToken, io: Io) {
  const until = created.expiresAt ? `, expires ${created.expiresAt}` : '';
  io.err(`token for ${created.name} (${created.role}${until}); it is shown only now:`);
  io.out(created.token);
}

export function printTokens(listed: { items: TokenView[] }, io: Io) {
  for (const t of listed.items) {
    const expiry = t.expiresAt ? `expires ${t.expiresAt}` : 'no expiry';
    io.out(`${t.name}  ${t.role}  created ${t.createdAt} by ${t.createdBy}  last used ${t.lastUsedAt ?? 'never'}  ${expiry}`);
  }
  if (listed.items.length === 0) io.out('no tokens');
}
