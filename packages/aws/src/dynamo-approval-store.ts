import { type DynamoDBDocumentClient, GetCommand, PutCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { ApprovalDecision, ApprovalLink, ApprovalRequest, ApprovalStore } from '@slipway/core';
import { conditionally, putIfAbsent, translateSdkError } from './errors.ts';
import { keys, withoutKeys } from './table.ts';
import { epochSeconds, fromItem, TTL_DAYS } from './ttl.ts';

type Item = Record<string, unknown>;

/**
 * Approval requests, links (by hash), decisions and one-time notification claims, in the one table.
 * Links and notification claims expire by themselves (`ttl`, see ttl.ts): a link 30 days after its
 * own expiry, a claim 400 days after it was made (or taken again, once given back). Requests and
 * decisions are part of the release's record (pk REL#<id>) and have no ttl.
 */
export function createDynamoApprovalStore(client: DynamoDBDocumentClient, tableName: string): ApprovalStore {
  const putOnce = (item: Item, what: string) => putIfAbsent(client, tableName, item, `the approval table (${what})`);

  async function get(key: Item): Promise<Item | undefined> {
    try {
      const result = await client.send(new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true }));
      return result.Item as Item | undefined;
    } catch (error) {
      throw translateSdkError(error, 'the approval table (get)');
    }
  }

  async function query(pk: string, prefix: string): Promise<Item[]> {
    const items: Item[] = [];
    let start: Item | undefined;
    do {
      const page = await client
        .send(
          new QueryCommand({
            TableName: tableName,
            KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
            ExpressionAttributeValues: { ':pk': pk, ':prefix': prefix },
            // Counting approvals must see every decision already written.
            ConsistentRead: true,
            ExclusiveStartKey: start,
          }),
        )
        .catch((error: unknown) => {
          throw translateSdkError(error, 'the approval table (query)');
        });
      items.push(...((page.Items ?? []) as Item[]));
      start = page.LastEvaluatedKey as Item | undefined;
    } while (start);
    return items;
  }

  function conditionalUpdate(input: ConstructorParameters<typeof UpdateCommand>[0], what: string): Promise<boolean> {
    return conditionally(
      `the approval table (${what})`,
      async () => {
        await client.send(new UpdateCommand(input));
        return true;
      },
      () => false,
    );
  }

  return {
    async createRequest(request) {
      const key = keys.approval(request.releaseId, request.environment);
      // Pending requests sit in an index by expiry, so the sweep finds the due ones with one query.
      const pendingIndex = request.status === 'pending' ? { gsi1pk: 'APPROVALS#PENDING', gsi1sk: `${request.expiresAt}#${request.releaseId}#${request.environment}` } : {};
      if (await putOnce({ ...key, ...pendingIndex, ...request }, 'create request')) return { created: true, request };
      return { created: false, request: withoutKeys<ApprovalRequest>((await get(key))!) };
    },

    async getRequest(releaseId, environment) {
      const item = await get(keys.approval(releaseId, environment));
      return item ? withoutKeys<ApprovalRequest>(item) : undefined;
    },

    async listRequests(releaseId) {
      return (await query(`REL#${releaseId}`, 'APPROVAL#')).map((item) => withoutKeys<ApprovalRequest>(item));
    },

    async listDueRequests(now) {
      const result = await client
        .send(
          new QueryCommand({
            TableName: tableName,
            IndexName: 'gsi1',
            KeyConditionExpression: 'gsi1pk = :pending AND gsi1sk <= :now',
            ExpressionAttributeValues: { ':pending': 'APPROVALS#PENDING', ':now': `${now}#~` },
            Limit: 100,
          }),
        )
        .catch((error: unknown) => {
          throw translateSdkError(error, 'the approval table (due requests)');
        });
      return (result.Items ?? []).map((item) => withoutKeys<ApprovalRequest>(item as Item));
    },

    settleRequest(releaseId, environment, status, at) {
      return conditionalUpdate(
        {
          TableName: tableName,
          Key: keys.approval(releaseId, environment),
          UpdateExpression: 'SET #status = :status, decidedAt = :at REMOVE gsi1pk, gsi1sk',
          ConditionExpression: '#status = :pending',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':status': status, ':at': at, ':pending': 'pending' },
        },
        'settle request',
      );
    },

    async putLink(idHash, link) {
      const ttl = epochSeconds(link.expiresAt, TTL_DAYS.approvalLinkAfterExpiry);
      await putOnce({ ...keys.approvalLink(idHash), ...link, ttl }, 'put link');
    },

    async getLink(idHash) {
      const item = await get(keys.approvalLink(idHash));
      return item ? fromItem<ApprovalLink>(item) : undefined;
    },

    useLink(idHash, at) {
      return conditionalUpdate(
        {
          TableName: tableName,
          Key: keys.approvalLink(idHash),
          UpdateExpression: 'SET usedAt = :at',
          ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(usedAt)',
          ExpressionAttributeValues: { ':at': at },
        },
        'use link',
      );
    },

    recordDecision(decision: ApprovalDecision) {
      return putOnce(
        { ...keys.decision(decision.releaseId, decision.environment, decision.approver.toLowerCase()), ...decision },
        'record decision',
      );
    },

    async listDecisions(releaseId, environment) {
      return (await query(`REL#${releaseId}`, `DECISION#${environment}#`)).map((item) => withoutKeys<ApprovalDecision>(item));
    },

    claimNotification(key, at) {
      const ttl = epochSeconds(at, TTL_DAYS.notificationClaim);
      // A new claim, or one given back whose retry time came: the put replaces it whole (no retryAt).
      return conditionally(
        'the approval table (claim notification)',
        async () => {
          await client.send(
            new PutCommand({
              TableName: tableName,
              Item: { ...keys.notification(key), claimedAt: at, ttl },
              ConditionExpression: 'attribute_not_exists(pk) OR retryAt <= :at',
              ExpressionAttributeValues: { ':at': at },
            }),
          );
          return true;
        },
        () => false,
      );
    },

    async deferNotification(key, claimedAt, retryAt) {
      await conditionalUpdate(
        {
          TableName: tableName,
          Key: keys.notification(key),
          UpdateExpression: 'SET retryAt = :retryAt',
          ConditionExpression: 'claimedAt = :claimedAt',
          ExpressionAttributeValues: { ':retryAt': retryAt, ':claimedAt': claimedAt },
        },
        'defer notification',
      );
    },
  };
}
