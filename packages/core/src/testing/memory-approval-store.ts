import type { ApprovalDecision, ApprovalLink, ApprovalRequest, ApprovalStore } from '../ports.ts';
import { compareCodeUnits } from '../release.ts';

const copy = <T>(value: T): T => structuredClone(value);
/** As many due requests as one DynamoDB query answers. */
const DUE_PAGE = 100;

/**
 * An in-memory fake of the approval store: create-once requests and decisions, a request settles
 * once, a link is used once, a notification is claimed once unless given back. It passes the
 * approval store's contract suite (test/contract) like the DynamoDB store does.
 */
export function createMemoryApprovalStore(): ApprovalStore {
  const requests = new Map<string, ApprovalRequest>();
  const links = new Map<string, ApprovalLink>();
  const decisions = new Map<string, ApprovalDecision>();
  const claims = new Map<string, { claimedAt: string; retryAt?: string }>();
  const gate = (releaseId: string, environment: string) => `${releaseId}#${environment}`;
  const dueOrder = (r: ApprovalRequest) => `${r.expiresAt}#${r.releaseId}#${r.environment}`;

  return {
    async createRequest(request) {
      const key = gate(request.releaseId, request.environment);
      const there = requests.get(key);
      if (there) return { created: false, request: copy(there) };
      requests.set(key, copy(request));
      return { created: true, request: copy(request) };
    },
    async getRequest(releaseId, environment) {
      const request = requests.get(gate(releaseId, environment));
      return request ? copy(request) : undefined;
    },
    async listRequests(releaseId) {
      return [...requests.values()]
        .filter((r) => r.releaseId === releaseId)
        .sort((a, b) => compareCodeUnits(a.environment, b.environment))
        .map(copy);
    },
    async listDueRequests(now) {
      return [...requests.values()]
        .filter((r) => r.status === 'pending' && dueOrder(r) <= `${now}#~`)
        .sort((a, b) => compareCodeUnits(dueOrder(a), dueOrder(b)))
        .slice(0, DUE_PAGE)
        .map(copy);
    },
    async settleRequest(releaseId, environment, status, at) {
      const request = requests.get(gate(releaseId, environment));
      if (request?.status !== 'pending') return false;
      requests.set(gate(releaseId, environment), { ...request, status, decidedAt: at });
      return true;
    },

    async putLink(idHash, link) {
      if (!links.has(idHash)) links.set(idHash, copy(link));
    },
    async getLink(idHash) {
      const link = links.get(idHash);
      return link ? copy(link) : undefined;
    },
    async useLink(idHash, at) {
      const link = links.get(idHash);
      if (!link || link.usedAt) return false;
      links.set(idHash, { ...link, usedAt: at });
      return true;
    },

    async recordDecision(decision) {
      const key = `${gate(decision.releaseId, decision.environment)}#${decision.approver.toLowerCase()}`;
      if (decisions.has(key)) return false;
      decisions.set(key, copy(decision));
      return true;
    },
    async listDecisions(releaseId, environment) {
      const prefix = `${gate(releaseId, environment)}#`;
      return [...decisions.entries()]
        .filter(([key]) => key.startsWith(prefix))
        .sort(([a], [b]) => compareCodeUnits(a, b))
        .map(([, decision]) => copy(decision));
    },

    async claimNotification(key, at) {
      const claim = claims.get(key);
      if (claim && !(claim.retryAt !== undefined && claim.retryAt <= at)) return false;
      claims.set(key, { claimedAt: at });
      return true;
    },
    async deferNotification(key, claimedAt, retryAt) {
      const claim = claims.get(key);
      if (claim?.claimedAt === claimedAt) claims.set(key, { ...claim, retryAt });
    },
  };
}
