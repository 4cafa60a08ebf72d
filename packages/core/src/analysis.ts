import type { AlarmMonitor, HttpProbe } from './ports.ts';
import type { Analysis } from './schemas.ts';

/** The sources an analysis asks; either may be missing where nothing provides it. */
export interface AnalysisSources {
  http?: HttpProbe;
  alarms?: AlarmMonitor;
}

/**
 * One check of one probe. `ran` is false when the check could not be made at all (the URL
 * unreachable, an alarm unknown): at the start of an environment's analysis that fails safe.
 */
export interface CheckResult {
  check: string;
  ok: boolean;
  ran: boolean;
  /** What it saw: the HTTP status, the alarms' states, or why it could not look. */
  status: string;
}

const messageOf = (error: unknown) => (error instanceof Error ? error.message || error.name : String(error)).slice(0, 300);

/**
 * The URL as events and reasons show it: without its query and fragment, which may carry a token.
 * Never throws: the schema let only well-formed URLs in.
 */
export function displayedUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return '(the configured URL)';
  }
}

/** Runs every check of the analysis once. Never throws: a check that cannot run says so. */
export async function probeAnalysis(analysis: Analysis, sources: AnalysisSources): Promise<CheckResult[]> {
  const results: CheckResult[] = [];
  if (analysis.http) {
    const { url, expectStatus, timeoutSeconds } = analysis.http;
    const check = `GET ${displayedUrl(url)}`;
    if (!sources.http) {
      results.push({ check, ok: false, ran: false, status: 'no HTTP probe is wired in this runtime' });
    } else {
      try {
        const { status } = await sources.http.get(url, timeoutSeconds);
        results.push({ check, ok: status === expectStatus, ran: true, status: status === expectStatus ? `${status}` : `${status} (expected ${expectStatus})` });
      } catch (error) {
        results.push({ check, ok: false, ran: false, status: `unreachable: ${messageOf(error)}` });
      }
    }
  }
  if (analysis.alarms) {
    const names = analysis.alarms;
    const check = `alarms ${names.join(', ')}`;
    if (!sources.alarms) {
      results.push({ check, ok: false, ran: false, status: 'no alarm source is wired in this runtime' });
    } else {
      try {
        const states = new Map((await sources.alarms.describe(names)).map((alarm) => [alarm.name, alarm.state]));
        const unknown = names.filter((name) => !states.has(name));
        const firing = names.filter((name) => states.get(name) === 'ALARM');
        if (unknown.length > 0) {
          results.push({ check, ok: false, ran: false, status: `no such alarm: ${unknown.join(', ')}` });
        } else {
          results.push({ check, ok: firing.length === 0, ran: true, status: firing.length === 0 ? 'OK' : `ALARM: ${firing.join(', ')}` });
        }
      } catch (error) {
        results.push({ check, ok: false, ran: false, status: `could not read the alarms: ${messageOf(error)}` });
      }
    }
  }
  return results;
}

/** The release's reason when an analysis fails: what failed and the last status it saw. */
export function analysisFailureReason(failed: CheckResult, failures: number, limit: number, atStart: boolean): string {
  if (atStart) return `analysis failed: ${failed.check} could not run at the start of the analysis (${failed.status}), so the release does not go on`;
  return `analysis failed: ${failed.check}, last status ${failed.status} (${failures} failed probe${failures === 1 ? '' : 's'}, limit ${limit})`;
}

/**
 * The HTTP probe of an analysis with the runtime's own fetch (the dev server locally, the Watch
 * Lambda on AWS). Redirects are not followed: a 302 is what the URL answered.
 */
export const fetchHttpProbe: HttpProbe = {
  async get(url, timeoutSeconds) {
    const response = await fetch(url, { redirect: 'manual', signal: AbortSignal.timeout(timeoutSeconds * 1000) });
    await response.body?.cancel();
    return { status: response.status };
  },
};
