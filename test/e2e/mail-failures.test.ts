import type { Mail, Mailer } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestServer, type TestServer } from '../support/dev-server.ts';
import { scenario } from '../support/scenario.ts';

/**
 * Mail that cannot go (SES in its sandbox, an unverified sender) fails no stage: the release goes on,
 * the failure is recorded on it, and the mail is sent by a later attempt. And what people read when a
 * stage function fails is its message, never Lambda's error document or a stack trace.
 */
let server: TestServer;
const s = scenario(() => server);

/** Refuses mails as SES does: each rule refuses the next `times` mails it matches; the rest reach the outbox. */
const refusals: { match: (mail: Mail) => boolean; times: number }[] = [];
const attempts: Mail[] = [];

function refusingMailer(outbox: Mailer): Mailer {
  return {
    async send(mail) {
      attempts.push(mail);
      const rule = refusals.find((r) => r.times > 0 && r.match(mail));
      if (!rule) return outbox.send(mail);
      rule.times -= 1;
      // A careless transport may quote the mail it refused: its links must not reach events or logs.
      const error = new Error(`Email address is not verified (${mail.to.join(', ')}). Refused: ${mail.text.slice(0, 2000)}`);
      error.name = 'MessageRejected';
      throw error;
    },
  };
}

beforeAll(async () => {
  server = await startTestServer(undefined, { mailer: refusingMailer });
});
afterAll(async () => server.stop());

const APPROVAL_LINK = /\/approvals\/[A-Za-z0-9_-]{43}/;

async function failedStates(id: string) {
  return (await server.executor.history(`release:${id}`)).filter((e) => e.type === 'StateFailed').map((e) => e.state);
}

describe('an approval mail that cannot be sent', () => {
  it('leaves the release waiting at its gate, records the failure, and the sweep sends the mail later', async () => {
    await s.app({
      name: 'sandboxed',
      deployRoot: '/srv/sandboxed',
      environments: [{ name: 'production', targets: { hosts: ['sandboxed-1'] }, approval: { approvers: ['ann@example.com'] } }],
    });
    refusals.push({ match: (mail) => mail.subject.startsWith('[Slipway] Approve sandboxed'), times: 1 });
    const deployer = await server.tokenFor('deployer', 'dana@example.com');
    const artifact = await s.tarball('sandboxed', { 'index.html': '1' });
    const opened = await server.call('POST', '/v1/releases', { token: deployer, body: { app: 'sandboxed', version: '1', artifact, description: 'one' } });
    expect(opened.status).toBe(202);
    const id = opened.body.id as string;

    const waiting = await s.waitFor(
      id,
      (r) => r.status === 'awaiting_approval' && r.events.some((e: any) => e.type === 'approval.mail_failed'),
      'reached its gate with a failed mail',
    );
    expect(waiting.environments.map((e: any) => [e.environment, e.status])).toEqual([['production', 'awaiting_approval']]);
    const failed = waiting.events.find((e: any) => e.type === 'approval.mail_failed');
    expect(failed.data).toMatchObject({ environment: 'production', to: 'ann@example.com', attempt: 1 });
    expect(failed.data.error).toMatch(/^Email address is not verified \(ann@example\.com\)/);
    expect(Date.parse(failed.data.retryAt)).toBeGreaterThan(Date.parse(failed.at));
    // The refused mail carried a link; no event and no log line does.
    expect(attempts.some((mail) => APPROVAL_LINK.test(mail.text))).toBe(true);
    expect(JSON.stringify(waiting.events)).not.toMatch(APPROVAL_LINK);
    const logged = server.logs.filter((line) => line.includes('a mail could not be sent'));
    expect(logged.length).toBeGreaterThan(0);
    for (const line of server.logs) expect(line).not.toMatch(APPROVAL_LINK);
    expect(await s.links(id)).toEqual({});

    // The sweep tries again once the retry time came: the approver gets a link that works.
    const mailed = await s.waitForGate(id, 'production');
    expect(mailed.events.filter((e: any) => e.type === 'approval.mailed')).toHaveLength(1);
    const link = (await s.links(id))['ann@example.com'];
    expect(link).toMatch(APPROVAL_LINK);
    expect((await s.decide(link!, 'approve')).status).toBe(200);
    const ended = await s.waitForEnd(id);
    expect(ended.status, ended.reason).toBe('succeeded');
    expect(await s.current('sandboxed-1')).toBe(`releases/${id}`);
    // The gate's stage never failed: the workflow took the path of a release whose mail went at once.
    expect(await failedStates(id)).toEqual([]);
    expect(attempts.filter((mail) => mail.subject.startsWith('[Slipway] Approve sandboxed'))).toHaveLength(2);
  });
});

describe('an outcome mail that cannot be sent', () => {
  it('leaves the release succeeded and records the failure; a later Finalize sends it, once', async () => {
    await s.app({ name: 'quiet', deployRoot: '/srv/quiet', environments: [{ name: 'live', targets: { hosts: ['quiet-1'] } }] });
    refusals.push({ match: (mail) => mail.subject === '[Slipway] quiet 1 succeeded', times: 1 });
    const deployer = await server.tokenFor('deployer', 'otto@example.com');
    const artifact = await s.tarball('quiet', { 'index.html': '1' });
    const opened = await server.call('POST', '/v1/releases', { token: deployer, body: { app: 'quiet', version: '1', artifact, description: 'one' } });
    const id = opened.body.id as string;

    const ended = await s.waitForEnd(id);
    expect(ended.status, ended.reason).toBe('succeeded');
    expect((await server.executor.describe(`release:${id}`))?.status).toBe('SUCCEEDED');
    expect(await failedStates(id)).toEqual([]);
    const failed = ended.events.filter((e: any) => e.type === 'notification.mail_failed');
    expect(failed).toHaveLength(1);
    expect(failed[0].data).toMatchObject({ to: 'otto@example.com', status: 'succeeded', attempt: 1 });
    expect(failed[0].data.error).toMatch(/^Email address is not verified/);
    expect(JSON.stringify(failed)).not.toContain(`/v1/releases/${id}`);
    expect(ended.events.some((e: any) => e.type === 'notification.mailed')).toBe(false);

    // The claim was given back: a Finalize that runs again (a retry, a resume) sends the mail after
    // its retry time, and a third run sends nothing more.
    const outcomeMails = async () => (await server.call('GET', '/v1/outbox')).body.items.filter((m: any) => m.subject === '[Slipway] quiet 1 succeeded');
    expect(await outcomeMails()).toHaveLength(0);
    await new Promise((resolve) => setTimeout(resolve, Date.parse(failed[0].data.retryAt) - Date.now() + 100));
    await server.slipway.stages!.finalize({ releaseId: id });
    await server.slipway.stages!.finalize({ releaseId: id });
    expect(await outcomeMails()).toHaveLength(1);
    const after = await s.release(id);
    expect(after.status).toBe('succeeded');
    expect(after.events.filter((e: any) => e.type === 'notification.mailed')).toMatchObject([{ data: { to: 'otto@example.com', status: 'succeeded' } }]);
  });
});

describe('failure reasons people read', () => {
  it('a stage function that throws ends the release with its message, not a JSON document or a stack trace', async () => {
    await s.app({ name: 'nowhere', deployRoot: '/srv/nowhere', environments: [{ name: 'production', targets: { tags: { Role: 'nothing' } } }] });
    const id = await s.open('nowhere', '1');
    const ended = await s.waitForEnd(id);
    expect(ended.status).toBe('failed');
    expect(ended.reason).toBe('environment production has no hosts: its targets match nothing');
    expect(ended.reason).not.toMatch(/trace|errorType|^\s*at /m);
    expect(ended.events.find((e: any) => e.type === 'release.failed').data.reason).toBe(ended.reason);
    // The Catch got what Lambda gives it: the error's name, and its error document (trace included).
    const prepare = (await server.executor.history(`release:${id}`)).find((e) => e.type === 'StateFailed' && e.state === 'Prepare');
    expect(prepare?.error).toBe('NotFoundError');
    // (History keeps the Cause as a JSON string, cut at 4 KB.)
    expect(prepare?.cause).toContain(String.raw`{\"errorType\":\"NotFoundError\",\"errorMessage\":\"environment production has no hosts`);
    expect(prepare?.cause).toContain(String.raw`\"trace\":[\"NotFoundError: `);
  });
});
