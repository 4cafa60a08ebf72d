import { escapeHtml } from './approval-pages.ts';
import type { Clock, IdGenerator } from './ids.ts';
import { type Logger, scrub } from './logger.ts';
import type { ApprovalStore, EventStore, Mail, Mailer, Notifier } from './ports.ts';
import type { Release } from './release.ts';

/**
 * Mails and webhook calls about a release, each sent at most once through a notification claim
 * (ApprovalStore.claimNotification): approval mails (approvals.ts) and how a release ended.
 */

/** After the n-th failed send of a mail, how long until it is tried again (the last, from then on). */
const MAIL_RETRY_SECONDS = [5, 30, 120, 600, 3600];

/** Why a mail did not go, for the release's events and the log: the error's message, without any link. */
function mailError(error: unknown, links: string[]): string {
  let message = error instanceof Error ? error.message.trim() || error.name : String(error);
  for (const link of links) message = message.split(link).join('[link]');
  return scrub(message);
}

/** One attempt at a mail whose notification claim this call holds; `data` goes into its events. */
export interface ClaimedMail {
  releaseId: string;
  /** The notification claim this attempt holds. */
  key: string;
  claimedAt: string;
  /** `approval` or `notification`: the events are `<kind>.mailed` and `<kind>.mail_failed`. */
  kind: 'approval' | 'notification';
  data: { to: string } & Record<string, unknown>;
}

export interface MailDeliveryDeps {
  store: EventStore;
  claims: Pick<ApprovalStore, 'deferNotification'>;
  mailer: Mailer;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
}

export function createMailDelivery({ store, claims, mailer, clock, ids, logger }: MailDeliveryDeps) {
  async function record(releaseId: string, type: string, data?: Record<string, unknown>) {
    await store.appendEvent({ releaseId, id: ids.next(), at: clock.now().toISOString(), type, actor: 'slipway', data });
  }

  /**
   * Sends a mail whose notification was just claimed. A mail that cannot go (SES refuses it: the
   * sandbox, an unverified sender) fails nothing: the claim is given back, so a later attempt (the
   * sweep, a retried or resumed stage) sends it, and the failure is recorded on the release and
   * logged with the error's message only, never the mail or a link. Anything else failing on the way
   * gives the claim back at once and is thrown. `compose` answers undefined when no mail is due any
   * more (the release ended): the claim stands and nothing is sent.
   */
  async function sendClaimed(claimed: ClaimedMail, compose: () => Promise<{ mail: Mail; links: string[] } | undefined>): Promise<void> {
    const { releaseId, key, claimedAt, kind, data } = claimed;
    let composed: { mail: Mail; links: string[] } | undefined;
    try {
      composed = await compose();
      if (!composed) return;
    } catch (error) {
      await claims.deferNotification(key, claimedAt, claimedAt).catch(() => undefined);
      throw error;
    }
    try {
      await mailer.send(composed.mail);
    } catch (error) {
      const message = mailError(error, composed.links);
      const type = `${kind}.mail_failed`;
      const earlier = (await store.listEvents(releaseId)).filter(
        (e) => e.type === type && e.data?.to === data.to && e.data?.environment === data.environment,
      );
      const attempt = earlier.length + 1;
      const delay = MAIL_RETRY_SECONDS[Math.min(attempt, MAIL_RETRY_SECONDS.length) - 1]!;
      const retryAt = new Date(clock.now().getTime() + delay * 1000).toISOString();
      await claims.deferNotification(key, claimedAt, retryAt);
      logger.warn('a mail could not be sent; it will be tried again', { releaseId, type, to: data.to, attempt, retryAt, error: message });
      await record(releaseId, type, { ...data, error: message, attempt, retryAt });
      return;
    }
    await record(releaseId, `${kind}.mailed`, data);
  }

  return { sendClaimed };
}
export type MailDelivery = ReturnType<typeof createMailDelivery>;

export interface OutcomeNotificationDeps {
  store: EventStore;
  claims: Pick<ApprovalStore, 'claimNotification'>;
  delivery: MailDelivery;
  notifier: Notifier;
  clock: Clock;
  ids: IdGenerator;
  logger: Logger;
  /** Where people reach Slipway, e.g. https://deploy.example.com (no trailing slash). */
  baseUrl: () => string;
}

export function createOutcomeNotifications({ store, claims, delivery, notifier, clock, ids, logger, baseUrl }: OutcomeNotificationDeps) {
  async function record(releaseId: string, type: string, data?: Record<string, unknown>) {
    await store.appendEvent({ releaseId, id: ids.next(), at: clock.now().toISOString(), type, actor: 'slipway', data });
  }

  return {
    /**
     * Tells the opener that a canary paused, once per pause: where, and how it goes on (a person
     * promotes it, or it goes on by itself at `resumeAt`), with the link to the release.
     */
    async notifyPaused(release: Release, pause: { environment: string; batch: number; step: number; resumeAt?: string }) {
      if (!release.openedBy.includes('@')) return;
      const at = clock.now().toISOString();
      const key = `paused-mail#${release.id}#${pause.environment}#${pause.batch}`;
      if (!(await claims.claimNotification(key, at))) return;
      const link = `${baseUrl()}/v1/releases/${release.id}`;
      const data = { to: release.openedBy, status: 'paused', environment: pause.environment, step: pause.step };
      await delivery.sendClaimed({ releaseId: release.id, key, claimedAt: at, kind: 'notification', data }, async () => {
        const goesOn = pause.resumeAt
          ? `It goes on by itself at ${pause.resumeAt}; promote it to go on now.`
          : 'It waits for a person: promote it to go on (slipway release promote ' + release.id + '), or cancel it to put every switched host back.';
        const text = [
          `${release.app} ${release.version} is paused in ${pause.environment} after batch ${pause.batch + 1} (canary step ${pause.step + 1}).`,
          '',
          goesOn,
          '',
          `Release ${release.id}: ${link}`,
        ].join('\n');
        const mail = {
          to: [release.openedBy],
          subject: `[Slipway] ${release.app} ${release.version} paused in ${pause.environment}`,
          text,
          html: `<!doctype html><html><body><pre style="white-space:pre-wrap;font-family:system-ui,sans-serif">${escapeHtml(text)}</pre></body></html>`,
        };
        return { mail, links: [link] };
      });
    },

    /**
     * Tells the opener (and the app's webhook) how a release ended; each at most once. A cancel is
     * told to the webhook only (whoever cancelled knows). The webhook's outcome is recorded on the
     * release and never fails the caller.
     */
    async notifyOutcome(release: Release, status: 'succeeded' | 'failed' | 'rejected' | 'cancelled', reason?: string) {
      const at = clock.now().toISOString();
      const link = `${baseUrl()}/v1/releases/${release.id}`;
      const mailKey = `outcome-mail#${release.id}`;
      if (status !== 'cancelled' && release.openedBy.includes('@') && (await claims.claimNotification(mailKey, at))) {
        // A mail that cannot go is recorded and tried again by a later call; the release stays as it ended.
        const data = { to: release.openedBy, status };
        await delivery.sendClaimed({ releaseId: release.id, key: mailKey, claimedAt: at, kind: 'notification', data }, async () => {
          const text = [
            `${release.app} ${release.version} ${status}.`,
            ...(reason ? ['', `Reason: ${reason}`] : []),
            '',
            `Release ${release.id}: ${link}`,
          ].join('\n');
          const mail = {
            to: [release.openedBy],
            subject: `[Slipway] ${release.app} ${release.version} ${status}`,
            text,
            html: `<!doctype html><html><body><pre style="white-space:pre-wrap;font-family:system-ui,sans-serif">${escapeHtml(text)}</pre></body></html>`,
          };
          return { mail, links: [link] };
        });
      }
      if (release.config.webhookUrl && (await claims.claimNotification(`outcome-webhook#${release.id}`, at))) {
        try {
          // Who cancelled: the actor of the cancel request, which recorded the release's end first.
          const cancelledBy =
            status === 'cancelled' ? ((await store.listEvents(release.id)).find((e) => e.type === 'release.cancelled')?.actor ?? null) : undefined;
          const posted = await notifier.post(
            release.config.webhookUrl,
            {
              event: `release.${status}`,
              release: {
                id: release.id,
                app: release.app,
                version: release.version,
                status,
                reason: reason ?? null,
                openedBy: release.openedBy,
                ...(cancelledBy === undefined ? {} : { cancelledBy }),
              },
              link,
            },
            ids.next(),
          );
          const { deliveryId, attempts, httpStatus } = posted;
          if (posted.ok) {
            await record(release.id, 'notification.webhook', { status, deliveryId, attempts, httpStatus });
          } else {
            logger.warn('the webhook did not take the notification', { releaseId: release.id, deliveryId, attempts, error: posted.error });
            await record(release.id, 'notification.webhook_failed', {
              status,
              deliveryId,
              attempts,
              httpStatus: httpStatus ?? null,
              error: posted.error,
            });
          }
        } catch (error) {
          logger.warn('the webhook did not take the notification', { releaseId: release.id, error });
        }
      }
    },
  };
}
export type OutcomeNotifications = ReturnType<typeof createOutcomeNotifications>;
