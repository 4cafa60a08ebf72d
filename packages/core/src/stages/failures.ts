import type { HostInvocation, StepKind } from '../ports.ts';

/** A failure as the ASL's Catch hands it to the stage that handles it. */
export interface StageFailure {
  Error: string;
  Cause?: string;
}

export function tail(text: string, limit: number): string {
  return text.length <= limit ? text : `…${text.slice(text.length - limit)}`;
}

/** A person-readable account of what failed where, for the release's reason and the task's cause. */
export function describeFailure(kind: StepKind, environment: string, failed: HostInvocation[], batchIndex?: number) {
  const where = batchIndex === undefined ? `${kind} in ${environment}` : `${kind} of batch ${batchIndex + 1} in ${environment}`;
  const first = failed[0];
  const detail = first
    ? `${first.host} ${first.status === 'failed' ? `exited ${first.exitCode}` : first.status}: ${tail((first.stderr || first.stdout).trim(), 500)}`
    : 'no host reported';
  const others = failed.length > 1 ? ` (and ${failed.length - 1} more host${failed.length > 2 ? 's' : ''})` : '';
  return `${where} failed on ${detail}${others}`;
}

/** The text people read (a release's reason, an environment's failure) for a failure the ASL caught. */
export function reasonOf(failure: StageFailure | undefined): string {
  if (!failure) return 'the release workflow failed';
  const cause = causeText(failure.Cause);
  if (failure.Error === 'States.Timeout') return `timed out${cause ? `: ${cause}` : ''}`;
  return cause ? cause : failure.Error;
}

const LAMBDA_ERROR_DOCUMENT = /^\{.*"error(Type|Message)"\s*:/s;
const LAMBDA_ERROR_MESSAGE = /"errorMessage"\s*:\s*("(?:[^"\\]|\\.)*")/;

function parsed(json: string): unknown {
  try {
    return JSON.parse(json) as unknown;
  } catch {
    return undefined;
  }
}

/**
 * A Cause as text. A Lambda function's error reaches the Catch with the runtime's error document as
 * its Cause (`{"errorType", "errorMessage", "trace"}` as JSON): only its message is kept, never the
 * stack trace, even when Step Functions cut the document short (a Cause holds at most 32,768
 * characters). Any other Cause (a host command's account, SendTaskFailure's) is text already.
 */
export function causeText(cause: string | undefined): string | undefined {
  const text = cause?.trim();
  if (!text || !LAMBDA_ERROR_DOCUMENT.test(text)) return text;
  const document = parsed(text);
  if (document && typeof document === 'object') {
    const { errorType, errorMessage } = document as { errorType?: unknown; errorMessage?: unknown };
    if (typeof errorMessage === 'string' && errorMessage.trim()) return errorMessage.trim();
    return typeof errorType === 'string' && errorType ? errorType : undefined;
  }
  // Cut short: the message comes before the trace, so it is usually whole.
  const quoted = LAMBDA_ERROR_MESSAGE.exec(text)?.[1];
  const message = quoted === undefined ? undefined : parsed(quoted);
  return typeof message === 'string' && message.trim() ? message.trim() : 'the function failed and its error could not be read';
}
