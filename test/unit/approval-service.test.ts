import { AppConfig, ForbiddenError, UnprocessableError } from '@slipway/core';
import { describe, expect, it } from 'vitest';
import { createTestSlipway } from '../../packages/core/src/testing/harness.ts';
import { shopConfigInput } from '../support/fixtures.ts';

/** The approval gate on fakes and a hand-moved clock: quorum, self-approval, expiry, reject, links. */

const HOUR = 3_600_000;
const LINK = /\/approvals\/([A-Za-z0-9_-]{43})/;

function shopWithGate(approval: Record<string, unknown>) {
  const [staging, production] = shopConfigInput.environments;
  return AppConfig.parse({
    ...shopConfigInput,
    environments: [staging, { ...production, approval: { approvers: ['lead@example.com', 'cto@example.com'], required: 1, timeoutHours: 2, ...approval } }],
  });
}

/** A release waiting at its production gate on the token `gate`, and each approver's link id. */
async function atTheGate(approval: Record<string, unknown> = {}, openedBy = 'dev@example.com') {
  const t = createTestSlipway();
  await t.appWithArtifact(shopWithGate(approval));
  const { id } = await t.open('shop', '1.0.0', undefined, openedBy);
  await t.stages.prepare({ releaseId: id, app: 'shop' });
  await t.stages.awaitApproval({ taskToken: 'gate', releaseId: id, environment: 'production' });
  const links = new Map(t.mailer.sent.map((mail) => [mail.to[0]!, LINK.exec(mail.text)![1]!]));
  const csrfOf = async (approvalId: string) => /name="csrf" value="([^"]+)"/.exec((await t.slipway.approvals.view(approvalId, 'GET')).html)![1]!;
  const decideByLink = async (approver: string, decision: 'approve' | 'reject', reason = '') => {
    const approvalId = links.get(approver)!;
    return t.slipway.approvals.decideByLink(approvalId, { decision, reason, csrf: await csrfOf(approvalId) });
  };
  return { t, id, links, decideByLink };
}

describe('asking for approval', () => {
  it('mails each approver a link of their own, once, and waits', async () => {
    const { t, id, links } = await atTheGate();
    expect(t.mailer.sent.map((m) => m.to)).toEqual([['lead@example.com'], ['cto@example.com']]);
    expect(new Set(links.values()).size).toBe(2);
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'awaiting_approval' });
    expect(await t.approvalStore.getRequest(id, 'production')).toMatchObject({ status: 'pending', expiresAt: '2026-01-01T02:00:00.000Z' });
    // A retried task hands the gate its new token and mails no one again.
    await t.stages.awaitApproval({ taskToken: 'gate-2', releaseId: id, environment: 'production' });
    expect(t.mailer.sent).toHaveLength(2);
    expect((await t.store.getStep(id, 'approval#production'))?.taskToken).toBe('gate-2');
    expect((await t.store.listEvents(id)).filter((e) => e.type === 'approval.requested')).toHaveLength(1);
  });

  it('never puts the link or the task token in an event', async () => {
    const { t, id, links } = await atTheGate();
    const events = JSON.stringify(await t.store.listEvents(id));
    for (const link of links.values()) expect(events).not.toContain(link);
    expect(events).not.toContain('"gate"');
  });
});

describe('deciding', () => {
  it('waits for the quorum, then lets the workflow on once', async () => {
    const { t, id, decideByLink } = await atTheGate({ required: 2 });
    expect((await decideByLink('lead@example.com', 'approve')).status).toBe(200);
    expect(await t.approvalStore.getRequest(id, 'production')).toMatchObject({ status: 'pending' });
    expect(t.workflow.outcomeOf('gate')).toBeUndefined();
    const viaApi = await t.slipway.approvals.decideByApi(id, { decision: 'approve', reason: 'ok' }, { name: 'cto@example.com', role: 'approver' });
    expect(viaApi).toEqual({ environment: 'production', decision: 'approve', gate: 'approved' });
    expect(t.workflow.outcomeOf('gate')).toEqual({ token: 'gate', kind: 'success', output: { approved: true } });
    expect(t.workflow.outcomes.filter((o) => o.token === 'gate')).toHaveLength(1);
  });

  it('settles once when two approvers decide at the same moment', async () => {
    const { t, id, decideByLink } = await atTheGate({ required: 1 });
    const pages = await Promise.all([decideByLink('lead@example.com', 'approve'), decideByLink('cto@example.com', 'approve')]);
    expect(pages.map((p) => p.status)).toEqual([200, 200]);
    expect(await t.approvalStore.listDecisions(id, 'production')).toHaveLength(2);
    expect(t.workflow.outcomes.filter((o) => o.token === 'gate')).toHaveLength(1);
    expect((await t.store.listEvents(id)).filter((e) => e.type === 'approval.approved')).toHaveLength(1);
  });

  it('ends the gate at the first reject, with who and why', async () => {
    const { t, id, decideByLink } = await atTheGate({ required: 2 });
    await decideByLink('lead@example.com', 'approve');
    expect((await decideByLink('cto@example.com', 'reject', 'not on a Friday')).status).toBe(200);
    expect(await t.approvalStore.getRequest(id, 'production')).toMatchObject({ status: 'rejected', decidedAt: '2026-01-01T00:00:00.000Z' });
    expect(t.workflow.outcomeOf('gate')).toEqual({
      token: 'gate',
      kind: 'failure',
      error: 'ApprovalRejectedError',
      cause: 'rejected by cto@example.com: not on a Friday',
    });
  });

  it('refuses the opener approving their own release, by link and by API, unless the config allows it', async () => {
    const own = await atTheGate({}, 'lead@example.com');
    expect((await own.decideByLink('lead@example.com', 'approve')).status).toBe(403);
    await expect(
      own.t.slipway.approvals.decideByApi(own.id, { decision: 'approve', reason: '' }, { name: 'lead@example.com', role: 'approver' }),
    ).rejects.toBeInstanceOf(ForbiddenError);
    // Rejecting one's own release is allowed: it only stops it.
    expect((await own.decideByLink('lead@example.com', 'reject')).status).toBe(200);

    const allowed = await atTheGate({ allowSelfApproval: true }, 'lead@example.com');
    expect((await allowed.decideByLink('lead@example.com', 'approve')).status).toBe(200);
    expect(allowed.t.workflow.outcomeOf('gate')?.kind).toBe('success');
  });

  it('refuses someone who is not an approver of the gate', async () => {
    const { t, id } = await atTheGate();
    await expect(t.slipway.approvals.decideByApi(id, { decision: 'approve', reason: '' }, { name: 'intern@example.com', role: 'approver' })).rejects.toBeInstanceOf(
      ForbiddenError,
    );
  });
});

describe('links', () => {
  it('a view decides nothing; a link decides once; a forged form or link changes nothing', async () => {
    const { t, id, links, decideByLink } = await atTheGate({ required: 2 });
    const lead = links.get('lead@example.com')!;
    expect((await t.slipway.approvals.view(lead, 'GET')).status).toBe(200);
    expect((await t.slipway.approvals.view(lead, 'HEAD')).status).toBe(200);
    expect(await t.approvalStore.listDecisions(id, 'production')).toEqual([]);
    expect((await t.slipway.approvals.decideByLink(lead, { decision: 'approve', reason: '', csrf: 'forged' })).status).toBe(403);
    expect((await t.slipway.approvals.view('x'.repeat(43), 'GET')).status).toBe(404);
    expect((await t.slipway.approvals.view('not-a-link', 'GET')).status).toBe(404);
    expect((await decideByLink('lead@example.com', 'approve')).status).toBe(200);
    const reused = await t.slipway.approvals.decideByLink(lead, { decision: 'approve', reason: '', csrf: 'anything' });
    expect(reused.status).toBe(409);
    expect(reused.html).toContain('Each link decides once');
    expect(await t.approvalStore.listDecisions(id, 'production')).toHaveLength(1);
  });

  it('one link posted twice at the same moment records one decision', async () => {
    const { t, id, links } = await atTheGate({ required: 2 });
    const lead = links.get('lead@example.com')!;
    const csrf = /name="csrf" value="([^"]+)"/.exec((await t.slipway.approvals.view(lead, 'GET')).html)![1]!;
    const pages = await Promise.all([1, 2].map(() => t.slipway.approvals.decideByLink(lead, { decision: 'approve', reason: '', csrf })));
    expect(pages.map((p) => p.status).sort()).toEqual([200, 409]);
    expect(await t.approvalStore.listDecisions(id, 'production')).toHaveLength(1);
  });
});

describe('expiry', () => {
  it('times the gate out at its expiry, not before; the links and the API then refuse', async () => {
    const { t, id, links } = await atTheGate();
    t.clock.advance(2 * HOUR - 1);
    expect(await t.slipway.approvals.expireDue()).toBe(0);
    t.clock.advance(1);
    expect(await t.slipway.approvals.expireDue()).toBe(1);
    expect(await t.slipway.approvals.expireDue()).toBe(0);
    expect(await t.approvalStore.getRequest(id, 'production')).toMatchObject({ status: 'timed_out' });
    expect(t.workflow.outcomeOf('gate')).toMatchObject({ kind: 'failure', error: 'ApprovalTimedOutError' });
    const page = await t.slipway.approvals.view(links.get('lead@example.com')!, 'GET');
    expect(page.status).toBe(409);
    expect(page.html).toContain('No longer waiting');
    await expect(t.slipway.approvals.decideByApi(id, { decision: 'approve', reason: '' }, { name: 'lead@example.com', role: 'approver' })).rejects.toBeInstanceOf(
      UnprocessableError,
    );
  });

  it('a retried gate task after the expiry gets the timeout at once', async () => {
    const { t, id } = await atTheGate();
    t.clock.advance(3 * HOUR);
    await t.stages.awaitApproval({ taskToken: 'gate-late', releaseId: id, environment: 'production' });
    expect(t.workflow.outcomeOf('gate-late')).toMatchObject({ kind: 'failure', error: 'ApprovalTimedOutError' });
  });
});

describe('a mail that cannot go', () => {
  it('leaves the gate waiting, records the failure, and is sent again from its retry time on', async () => {
    const t = createTestSlipway();
    await t.appWithArtifact(shopWithGate({ approvers: ['lead@example.com'] }));
    const { id } = await t.open('shop', '1.0.0');
    await t.stages.prepare({ releaseId: id, app: 'shop' });
    t.mailer.refuse = new Error('Email address is not verified: lead@example.com');
    await t.stages.awaitApproval({ taskToken: 'gate', releaseId: id, environment: 'production' });
    expect(t.mailer.sent).toEqual([]);
    expect(await t.store.getRelease(id)).toMatchObject({ status: 'awaiting_approval' });
    const failed = (await t.store.listEvents(id)).find((e) => e.type === 'approval.mail_failed');
    expect(failed?.data).toMatchObject({ to: 'lead@example.com', attempt: 1, retryAt: '2026-01-01T00:00:05.000Z' });

    t.mailer.refuse = undefined;
    t.clock.advance(4_999);
    await t.slipway.approvals.expireDue();
    expect(t.mailer.sent).toEqual([]);
    t.clock.advance(1);
    await t.slipway.approvals.expireDue();
    await t.slipway.approvals.expireDue();
    expect(t.mailer.sent.map((m) => m.to)).toEqual([['lead@example.com']]);
    expect((await t.store.listEvents(id)).filter((e) => e.type === 'approval.mailed')).toHaveLength(1);
  });

  it('waits longer after each failure', async () => {
    const t = createTestSlipway();
    await t.appWithArtifact(shopWithGate({ approvers: ['lead@example.com'] }));
    const { id } = await t.open('shop', '1.0.0');
    await t.stages.prepare({ releaseId: id, app: 'shop' });
    t.mailer.refuse = new Error('throttled');
    await t.stages.awaitApproval({ taskToken: 'gate', releaseId: id, environment: 'production' });
    t.clock.advance(5_000);
    await t.slipway.approvals.expireDue();
    const retries = (await t.store.listEvents(id)).filter((e) => e.type === 'approval.mail_failed').map((e) => e.data?.retryAt);
    expect(retries).toEqual(['2026-01-01T00:00:05.000Z', '2026-01-01T00:00:35.000Z']);
  });
});
