import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type ApprovalContext, approvalMail, decisionPage, messagePage } from './approval-pages.ts';
import type { AuditLog } from './audit.ts';
import type { Principal } from './auth.ts';
import {
  ApprovalRejectedError,
  ApprovalTimedOutError,
  ConflictError,
  ForbiddenError,
  NotFoundError,
  ReleaseEndedError,
  UnprocessableError,
  ValidationError,
} from './errors.ts';
import type { DiffService } from './diffs.ts';
import type { Clock, IdGenerator } from './ids.ts';
import { deliverOutcome } from './steps.ts';
import type { Logger } from './logger.ts';
import { createMailDelivery, createOutcomeNotifications } from './notifications.ts';
import type {
  ApprovalDecision,
  ApprovalRecords,
  ApprovalRequest,
  ApprovalStore,
  ArtifactRecordStore,
  Mailer,
  Notifier,
  EnvironmentLiveStore,
  EventStore,
  ReleaseRecordStore,
  StepStore,
  Workflow,
} from './ports.ts';
import { isTerminal, type Release } from './release.ts';
import { ApprovalForm, ApprovalRequestBody, parse } from './schemas.ts';

/**
 * Approvals that survive mail scanners: each approver gets a personal, random, expiring, single-use
 * link. Opening it shows a page and changes nothing; only a POST from that page (with its CSRF token)
 * decides. The workflow's task token stays in the step record: never in a link, a mail, a page or a log.
 */
export interface ApprovalDeps {
  store: EventStore &
    Pick<ReleaseRecordStore, 'getRelease'> &
    Pick<EnvironmentLiveStore, 'getEnvironmentLive'> &
    Pick<StepStore, 'completeStep' | 'getStep'> &
    Pick<ArtifactRecordStore, 'getArtifactRecord'>;
  approvals: ApprovalStore;
  workflow: Workflow;
  mailer: Mailer;
  notifier: Notifier;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** Where people reach Slipway, e.g. https://deploy.example.com (no trailing slash). */
  baseUrl: () => string;
  /** Secret for CSRF tokens on approval pages. */
  signingKey: string;
  audit: AuditLog;
  /** What a release changes, for the mail and the page; without it they show no file lists. */
  diffs?: Pick<DiffService, 'diff'>;
}

export interface HtmlPage {
  status: number;
  html: string;
}

const APPROVAL_ID = /^[A-Za-z0-9_-]{43}$/;
/** Each approval gate with its approvers' decisions, as the release view shows it (never a link). */
export function approvalGates({ requests, decisions }: ApprovalRecords) {
  return requests.map((request) => ({
    ...request,
    decisions: decisions.filter((decision) => decision.environment === request.environment),
  }));
}

/** Later than any gate expires: the due requests up to it are every pending one. */
const END_OF_TIME = '9999-12-31T23:59:59.999Z';

export function approvalStepKey(environment: string): string {
  return `approval#${environment}`;
}

function hashId(approvalId: string): string {
  return createHash('sha256').update(approvalId).digest('hex');
}

export function createApprovalService(deps: ApprovalDeps) {
  const { store, approvals, workflow, mailer, notifier, clock, ids, logger, baseUrl, signingKey } = deps;
  const now = () => clock.now().toISOString();
  const { sendClaimed } = createMailDelivery({ store, claims: approvals, mailer, clock, ids, logger });
  const delivery = { sendClaimed };
  const outcomes = createOutcomeNotifications({ store, claims: approvals, delivery, notifier, clock, ids, logger, baseUrl });

  const csrfFor = (approvalId: string) => createHmac('sha256', signingKey).update(`csrf:${approvalId}`).digest('base64url');

  function csrfMatches(approvalId: string, csrf: string): boolean {
    const expected = Buffer.from(csrfFor(approvalId));
    const given = Buffer.from(csrf);
    return expected.length === given.length && timingSafeEqual(expected, given);
  }

  async function record(releaseId: string, type: string, actor: string, data?: Record<string, unknown>) {
    await store.appendEvent({ releaseId, id: ids.next(), at: now(), type, actor, data });
  }

  /**
   * Mails one approver of a gate their own link, once (again only if an earlier send failed);
   * `releaseOf` gives the release, or undefined when it ended and no mail is due.
   */
  async function mailApprover(request: ApprovalRequest, approver: string, releaseOf: () => Promise<Release | undefined>) {
    const { releaseId, environment } = request;
    const key = `approval-mail#${releaseId}#${environment}#${approver}`;
    const claimedAt = now();
    if (!(await approvals.claimNotification(key, claimedAt))) return;
    await sendClaimed({ releaseId, key, claimedAt, kind: 'approval', data: { environment, to: approver } }, async () => {
      const release = await releaseOf();
      if (!release) return undefined;
      const approvalId = randomBytes(32).toString('base64url');
      await approvals.putLink(hashId(approvalId), { releaseId, environment, approver, expiresAt: request.expiresAt });
      const link = `${baseUrl()}/approvals/${approvalId}`;
      return { mail: approvalMail(await context(release, environment, approver, request), link), links: [link, approvalId] };
    });
  }

  async function context(release: Release, environment: string, approver: string, request: ApprovalRequest): Promise<ApprovalContext> {
    const live = await store.getEnvironmentLive(release.app, environment);
    const liveRelease = live?.liveRelease ? await store.getRelease(live.liveRelease.id) : undefined;
    // The file lists help the approver; not having them must never keep the mail or the page from them.
    const changes = await deps.diffs?.diff(release.id, environment).catch((error: unknown) => {
      logger.warn('could not compute the release\'s diff for its approval', { releaseId: release.id, environment, error });
      return undefined;
    });
    const source = (await store.getArtifactRecord(release.app, release.artifact.sha256))?.source;
    return {
      ...(source ? { source } : {}),
      ...(changes ? { changes, diffUrl: `${baseUrl()}/#/releases/${encodeURIComponent(release.id)}/diff/${encodeURIComponent(environment)}` } : {}),
      app: release.app,
      version: release.version,
      environment,
      releaseId: release.id,
      openedBy: release.openedBy,
      description: release.description,
      sha256: release.artifact.sha256,
      ...(live?.liveRelease
        ? {
            live: {
              version: live.liveRelease.version,
              id: live.liveRelease.id,
              since: live.liveRelease.since,
              ...(liveRelease ? { sha256: liveRelease.artifact.sha256 } : {}),
            },
          }
        : {}),
      approver,
      required: request.required,
      approvers: request.approvers.length,
      expiresAt: request.expiresAt,
      now: clock.now(),
    };
  }

  const isSelf = (request: ApprovalRequest, release: Release, approver: string) =>
    !request.allowSelfApproval && release.openedBy.toLowerCase() === approver.toLowerCase();

  /** Tells the waiting task, once, how the gate ended. */
  async function settleGate(
    release: Release,
    request: ApprovalRequest,
    outcome: 'approved' | 'rejected' | 'timed_out' | 'cancelled',
    why: string,
  ) {
    if (!(await approvals.settleRequest(release.id, request.environment, outcome, now()))) return;
    const { step } = await store.completeStep(
      release.id,
      approvalStepKey(request.environment),
      outcome === 'approved'
        ? { status: 'succeeded', output: { approved: true } }
        : {
            status: 'failed',
            error:
              outcome === 'rejected'
                ? ApprovalRejectedError.name
                : outcome === 'timed_out'
                  ? ApprovalTimedOutError.name
                  : ReleaseEndedError.name,
            cause: why,
          },
      now(),
    );
    await record(release.id, `approval.${outcome}`, 'slipway', { environment: request.environment, why });
    await deliverOutcome(workflow, step);
  }

  /** Records one decision and settles the gate when it is decided: one reject, or enough approvals. */
  async function decide(release: Release, request: ApprovalRequest, decision: ApprovalDecision) {
    if (!(await approvals.recordDecision(decision))) {
      throw new ConflictError(`${decision.approver} already decided on ${release.app} ${release.version} for ${request.environment}`);
    }
    await record(release.id, 'approval.decided', decision.approver, {
      environment: request.environment,
      decision: decision.decision,
      reason: decision.reason,
      via: decision.via,
    });
    await deps.audit.record('approval.decided', decision.approver, `releases/${release.id}`, { app: release.app, version: release.version, environment: request.environment, decision: decision.decision, reason: decision.reason, via: decision.via });
    if (decision.decision === 'reject') {
      await settleGate(release, request, 'rejected', `rejected by ${decision.approver}${decision.reason ? `: ${decision.reason}` : ''}`);
      return;
    }
    const approvedBy = (await approvals.listDecisions(release.id, request.environment)).filter((d) => d.decision === 'approve');
    if (approvedBy.length >= request.required) {
      await settleGate(release, request, 'approved', `approved by ${approvedBy.map((d) => d.approver).join(', ')}`);
    }
  }

  async function openRequest(releaseId: string, environment: string) {
    const [release, request] = await Promise.all([store.getRelease(releaseId), approvals.getRequest(releaseId, environment)]);
    return release && request ? { release, request } : undefined;
  }

  async function linkFor(approvalId: string) {
    if (!APPROVAL_ID.test(approvalId)) return undefined;
    const link = await approvals.getLink(hashId(approvalId));
    if (!link) return undefined;
    const opened = await openRequest(link.releaseId, link.environment);
    return opened ? { link, ...opened } : undefined;
  }

  /** Why a link cannot decide (any more), as a page; undefined when it can. */
  function closedPage(link: { usedAt?: string; expiresAt: string }, request: ApprovalRequest): HtmlPage | undefined {
    if (link.usedAt) return { status: 409, html: messagePage('Already decided', `This link was used at ${link.usedAt}. Each link decides once.`) };
    if (request.status !== 'pending') {
      return {
        status: 409,
        html: messagePage('No longer waiting', `This approval is closed: the release was ${request.status.replace('_', ' ')} at ${request.decidedAt ?? 'an earlier time'}.`),
      };
    }
    if (link.expiresAt <= now()) return { status: 410, html: messagePage('Link expired', `This approval link expired at ${link.expiresAt}.`) };
    return undefined;
  }

  const NOT_VALID: HtmlPage = {
    status: 404,
    html: messagePage('Link not valid', 'This approval link is not one Slipway gave out, or it was changed. Use the link from your mail.'),
  };

  return {
    /**
     * The gate's work when the workflow reaches it: the request, one link and one mail per approver.
     * Called again for the same gate (a retry, a resume), it sends nothing twice; a gate that already
     * expired or was decided answers the new token at once.
     */
    async request(release: Release, environment: string) {
      const config = release.config.environments.find((e) => e.name === environment)?.approval;
      if (!config) throw new NotFoundError(`environment ${environment} of ${release.app} has no approval`);
      const at = clock.now();
      const { created, request } = await approvals.createRequest({
        releaseId: release.id,
        environment,
        approvers: config.approvers,
        required: config.required,
        allowSelfApproval: config.allowSelfApproval,
        status: 'pending',
        requestedAt: at.toISOString(),
        expiresAt: new Date(at.getTime() + config.timeoutHours * 3_600_000).toISOString(),
      });
      if (created) {
        await record(release.id, 'approval.requested', 'slipway', {
          environment,
          approvers: request.approvers,
          required: request.required,
          expiresAt: request.expiresAt,
        });
      }
      if (request.status === 'pending' && request.expiresAt <= at.toISOString()) {
        await settleGate(release, request, 'timed_out', `approval timed out at ${request.expiresAt}`);
        return;
      }
      // A mail that cannot go leaves the gate waiting all the same: the sweep sends it later.
      for (const approver of request.approvers) await mailApprover(request, approver, async () => release);
      if (request.status !== 'pending') {
        const step = await store.getStep(release.id, approvalStepKey(environment));
        if (step) await deliverOutcome(workflow, step);
      }
    },

    /** GET or HEAD of a link: shows the page, never decides. */
    async view(approvalId: string, method: 'GET' | 'HEAD'): Promise<HtmlPage> {
      const found = await linkFor(approvalId);
      if (!found) return NOT_VALID;
      const { link, release, request } = found;
      await record(release.id, 'approval.viewed', link.approver, { environment: link.environment, method });
      const closed = closedPage(link, request);
      if (closed) return closed;
      return {
        status: 200,
        html: decisionPage(await context(release, link.environment, link.approver, request), {
          action: `/approvals/${approvalId}`,
          csrf: csrfFor(approvalId),
          selfApproval: isSelf(request, release, link.approver),
        }),
      };
    },

    /** POST from the page: the one way a link decides. */
    async decideByLink(approvalId: string, form: Record<string, string>): Promise<HtmlPage> {
      const found = await linkFor(approvalId);
      if (!found) return NOT_VALID;
      const { link, release, request } = found;
      const closed = closedPage(link, request);
      if (closed) return closed;
      let parsed;
      try {
        parsed = parse(ApprovalForm, form, 'decision');
      } catch (error) {
        const message = error instanceof ValidationError ? error.message : 'the decision could not be read';
        return { status: 400, html: messagePage('Nothing was decided', `${message}. Go back to the page and try again.`) };
      }
      if (!csrfMatches(approvalId, parsed.csrf)) {
        return { status: 403, html: messagePage('Nothing was decided', 'This form did not come from your approval page. Open the link from your mail again.') };
      }
      if (parsed.decision === 'approve' && isSelf(request, release, link.approver)) {
        return { status: 403, html: messagePage('Nothing was decided', 'You opened this release, so you cannot approve it yourself.') };
      }
      if (!(await approvals.useLink(hashId(approvalId), now()))) {
        return { status: 409, html: messagePage('Already decided', 'This link was used a moment ago. Each link decides once.') };
      }
      try {
        await decide(release, request, {
          releaseId: release.id,
          environment: link.environment,
          approver: link.approver,
          decision: parsed.decision,
          reason: parsed.reason,
          at: now(),
          via: 'link',
        });
      } catch (error) {
        if (error instanceof ConflictError) return { status: 409, html: messagePage('Already decided', error.message) };
        throw error;
      }
      const verb = parsed.decision === 'approve' ? 'approved' : 'rejected';
      return {
        status: 200,
        html: messagePage(`You ${verb} ${release.app} ${release.version}`, `Your decision for ${link.environment} is recorded as ${link.approver} at ${now()}.`),
      };
    },

    /** POST /v1/releases/{id}/approvals, for approvers named in the config who hold the approver role. */
    async decideByApi(releaseId: string, body: unknown, principal: Principal) {
      const parsed = parse(ApprovalRequestBody, body, 'approval');
      const release = await store.getRelease(releaseId);
      if (!release) throw new NotFoundError(`release ${releaseId} does not exist`);
      const pending = (await approvals.listRequests(releaseId)).filter((r) => r.status === 'pending');
      const request = parsed.environment ? pending.find((r) => r.environment === parsed.environment) : pending[0];
      if (!request) {
        throw new UnprocessableError(`release ${releaseId} is not waiting for an approval${parsed.environment ? ` in ${parsed.environment}` : ''}`);
      }
      const approver = request.approvers.find((a) => a.toLowerCase() === principal.name.toLowerCase());
      if (!approver) throw new ForbiddenError(`${principal.name} is not an approver of ${request.environment} for ${release.app}`);
      if (request.expiresAt <= now()) throw new UnprocessableError(`the approval for ${request.environment} expired at ${request.expiresAt}`);
      if (parsed.decision === 'approve' && isSelf(request, release, approver)) {
        throw new ForbiddenError(`${approver} opened this release and cannot approve it`);
      }
      await decide(release, request, { releaseId, environment: request.environment, approver, decision: parsed.decision, reason: parsed.reason, at: now(), via: 'api' });
      const after = await approvals.getRequest(releaseId, request.environment);
      return { environment: request.environment, decision: parsed.decision, gate: after?.status ?? request.status };
    },

    /**
     * Times out every gate past its expiry, then tries again the approval mails of waiting gates that
     * could not be sent before (once each one's retry time came). Run it often (the dev server every
     * second, AWS on a schedule). Returns how many gates expired.
     */
    async expireDue(): Promise<number> {
      let expired = 0;
      for (const request of await approvals.listDueRequests(now())) {
        const release = await store.getRelease(request.releaseId);
        if (!release) continue;
        await settleGate(release, request, 'timed_out', `approval timed out at ${request.expiresAt}`);
        expired += 1;
      }
      for (const request of await approvals.listDueRequests(END_OF_TIME)) {
        if (request.expiresAt <= now()) continue;
        // The claims decide who needs a mail (each is one conditional write); the release is read
        // only for a mail that goes.
        let release: Promise<Release | undefined> | undefined;
        const releaseOf = async () => {
          release ??= store.getRelease(request.releaseId);
          const found = await release;
          return found && !isTerminal(found.status) ? found : undefined;
        };
        for (const approver of request.approvers) {
          try {
            await mailApprover(request, approver, releaseOf);
          } catch (error) {
            logger.warn('an approval mail could not be retried', { releaseId: request.releaseId, environment: request.environment, error });
          }
        }
      }
      return expired;
    },

    /** A cancelled release stops waiting at its gates: they close and the workflow moves on to revert. */
    async cancelGates(release: Release, by: string) {
      for (const request of await approvals.listRequests(release.id)) {
        if (request.status === 'pending') await settleGate(release, request, 'cancelled', `cancelled by ${by}`);
      }
    },

    /** Closes a gate the workflow gave up on (its timeout fired): links stop working. */
    async expire(releaseId: string, environment: string) {
      await approvals.settleRequest(releaseId, environment, 'timed_out', now());
    },

    /** How a release ended, to its opener and its webhook (notifications.ts); the stages call it here. */
    notifyOutcome: outcomes.notifyOutcome,
    notifyPaused: outcomes.notifyPaused,
  };
}
export type ApprovalService = ReturnType<typeof createApprovalService>;
