import { causeText, describeFailure, NotFoundError, reasonOf } from '@slipway/core';
import { lambdaFunctionError } from '@slipway/local';
import { describe, expect, it } from 'vitest';

/**
 * What people read when a task fails. On AWS a Lambda function's error reaches the ASL Catch as
 * `{Error: errorType, Cause: <the runtime's error document as JSON>}`; the release's reason must be
 * the error's message, never the document or its stack trace.
 */
const STACK_LINE = /^\s+at /m;

/** The document the Lambda Node.js runtime makes of a thrown error (aws-lambda-nodejs-runtime-interface-client). */
function lambdaDocument(error: Error) {
  return JSON.stringify({ errorType: error.name, errorMessage: error.message, trace: error.stack!.split('\n') });
}

describe('reasonOf', () => {
  it('reads a Lambda error document as its errorMessage, without the trace', () => {
    const error = new NotFoundError('environment production has no hosts: its targets match nothing');
    const cause = lambdaDocument(error);
    expect(cause).toMatch(/"trace":\["NotFoundError: .*","\s+at /);

    const reason = reasonOf({ Error: 'NotFoundError', Cause: cause });
    expect(reason).toBe('environment production has no hosts: its targets match nothing');
    expect(reason).not.toMatch(STACK_LINE);
    expect(reason).not.toContain('trace');
  });

  it('reads the Cause the local executor gives a function error the same way', () => {
    const failure = lambdaFunctionError(new NotFoundError('release 01x does not exist'));
    expect(failure.error).toBe('NotFoundError');
    const document = JSON.parse(failure.causeText);
    expect(document).toEqual({
      errorType: 'NotFoundError',
      errorMessage: 'release 01x does not exist',
      trace: expect.arrayContaining(['NotFoundError: release 01x does not exist', expect.stringMatching(STACK_LINE)]),
    });
    expect(reasonOf({ Error: failure.error, Cause: failure.causeText })).toBe('release 01x does not exist');
  });

  it('keeps the message of a document Step Functions cut short at 32,768 characters', () => {
    const error = new Error('the plan could not be stored');
    error.stack = `${error.stack}\n${'    at deep (/var/task/index.mjs:1:1)\n'.repeat(2000)}`;
    const cut = lambdaDocument(error).slice(0, 32_768);
    expect(() => JSON.parse(cut)).toThrow();
    expect(reasonOf({ Error: 'Error', Cause: cut })).toBe('the plan could not be stored');
  });

  it('names the error type when the message is empty, and the Error when there is no Cause', () => {
    expect(reasonOf({ Error: 'TypeError', Cause: JSON.stringify({ errorType: 'TypeError', errorMessage: '', trace: ['TypeError', '    at x (y.js:1:1)'] }) })).toBe(
      'TypeError',
    );
    expect(reasonOf({ Error: 'ReleaseEndedError' })).toBe('ReleaseEndedError');
    expect(reasonOf(undefined)).toBe('the release workflow failed');
  });

  it('reads a Lambda timeout (a document without a trace) and prefixes a States.Timeout', () => {
    const lambdaTimeout = JSON.stringify({ errorMessage: '2026-11-25T10:00:00.000Z 1f2e Task timed out after 60.06 seconds' });
    expect(reasonOf({ Error: 'Sandbox.Timedout', Cause: lambdaTimeout })).toBe('2026-11-25T10:00:00.000Z 1f2e Task timed out after 60.06 seconds');
    expect(reasonOf({ Error: 'States.Timeout', Cause: 'Distribute ran longer than its TimeoutSeconds (1900)' })).toBe(
      'timed out: Distribute ran longer than its TimeoutSeconds (1900)',
    );
  });

  it('keeps a plain Cause as it is: a host command failure, a rejection, text that only looks like JSON', () => {
    const hostFailure = describeFailure(
      'switch',
      'production',
      [{ host: 'web-2', status: 'failed', exitCode: 23, stdout: '', stderr: 'health check failed 3 times' }] as never,
      1,
    );
    expect(reasonOf({ Error: 'HostCommandFailedError', Cause: hostFailure })).toBe(
      'switch of batch 2 in production failed on web-2 exited 23: health check failed 3 times',
    );
    expect(reasonOf({ Error: 'ApprovalRejectedError', Cause: 'rejected by ann@example.com: not on a Friday' })).toBe(
      'rejected by ann@example.com: not on a Friday',
    );
    expect(causeText('{"hosts": 3} were asked')).toBe('{"hosts": 3} were asked');
    expect(causeText('  spaced  ')).toBe('spaced');
  });
});
