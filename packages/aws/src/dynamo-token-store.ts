import {
  BatchGetCommand,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { ConflictError, type StoredToken, type TokenStore } from '@slipway/core';
import { conditionally, putIfAbsent, translateSdkError } from './errors.ts';
import { keys } from './table.ts';
import { epochSeconds, fromItem, TTL_DAYS } from './ttl.ts';

type Item = Record<string, unknown>;

/**
 * Two items per token, written one after the other (local DynamoDB has no transactions):
 *
 * | item        | pk              | sk            | attributes                                   |
 * | token       | TOKEN#<sha256>  | TOKEN         | name, role, createdAt, createdBy, expiresAt?, lastUsedAt?, revokedAt?, ttl? |
 * | name claim  | TOKENS          | NAME#<name>   | name, hash, claimedAt, ttl?                  |
 *
 * The token item alone decides authentication: one consistent read per request. The name claim
 * makes names unique (a conditional put) and lists tokens (one partition, read consistently).
 *
 * Creating claims the name first, then stores the token. A crash in between leaves a claim whose
 * token item is missing; no secret was handed out for it, so it holds nothing. Such a claim blocks
 * its name for CLAIM_GRACE_MS (a creation still under way looks the same), after which a new token
 * takes the name over. Revoking marks the token item revoked first (from then on it is refused),
 * then deletes the claim; a claim left pointing at a revoked token is free to take at once. The
 * token item is kept as a tombstone so a revoked secret (say a bootstrap token still configured)
 * is never stored again.
 *
 * Expiry: a token with `expiresAt`, and its name claim, carry `ttl` = expiresAt + 7 days, so DynamoDB
 * may delete both once the token is long dead; either one going first is one of the crash states
 * above (a claim without its token frees the name after the grace; a token without a claim is not
 * listed, and is refused anyway). A token without `expiresAt` never gets a `ttl`, and revoking does
 * not give it one: its tombstone is kept for good. That tombstone is all that stops a revoked secret
 * from being stored again by `ensureAdminToken`, which stores whatever secret is configured
 * (SLIPWAY_ADMIN_TOKEN, the AdminToken secret); were it to expire, a revoked bootstrap token still
 * configured would come back as a working admin token at the next start. The store cannot tell for
 * sure which secrets may be configured, and a tombstone costs a few hundred bytes, so none expires.
 * (An expiring token's tombstone does go with its `ttl`: that secret was refused from `expiresAt` on,
 * and bootstrap tokens never expire.)
 */
export const CLAIM_GRACE_MS = 60_000;

/** The `ttl` of a token's items: only a token that expires has one. */
const expiryOf = (token: Pick<StoredToken, 'expiresAt'>) =>
  token.expiresAt ? { ttl: epochSeconds(token.expiresAt, TTL_DAYS.tokenAfterExpiry) } : {};

const nameKey = (name: string) => ({ pk: 'TOKENS', sk: `NAME#${name}` });

interface NameClaim {
  name: string;
  hash: string;
  claimedAt: string;
  /** The claimed token's ttl, if it expires. */
  ttl?: number;
}

export function createDynamoTokenStore(client: DynamoDBDocumentClient, tableName: string) {
  const what = 'the token table';

  async function call<T>(run: () => Promise<T>): Promise<T> {
    try {
      return await run();
    } catch (error) {
      throw translateSdkError(error, what);
    }
  }

  async function get(key: Item): Promise<Item | undefined> {
    const result = await call(() => client.send(new GetCommand({ TableName: tableName, Key: key, ConsistentRead: true })));
    return result.Item;
  }

  const getClaim = async (name: string) => (await get(nameKey(name))) as NameClaim | undefined;

  async function getToken(hash: string): Promise<StoredToken | undefined> {
    const item = await get(keys.token(hash));
    return item ? fromItem<StoredToken>(item) : undefined;
  }

  /** Marks a token revoked; false if it was revoked already or is not there. */
  function markRevoked(hash: string, at: string): Promise<boolean> {
    return conditionally(
      what,
      async () => {
        await client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: keys.token(hash),
            UpdateExpression: 'SET revokedAt = :at',
            ConditionExpression: 'attribute_exists(pk) AND attribute_not_exists(revokedAt)',
            ExpressionAttributeValues: { ':at': at },
          }),
        );
        return true;
      },
      () => false,
    );
  }

  /** Deletes or replaces a claim only if it still names `hash`; false if it changed meanwhile. */
  function deleteClaim(name: string, hash: string): Promise<boolean> {
    return conditionally(
      what,
      async () => {
        await client.send(
          new DeleteCommand({
            TableName: tableName,
            Key: nameKey(name),
            ConditionExpression: '#hash = :hash',
            ExpressionAttributeNames: { '#hash': 'hash' },
            ExpressionAttributeValues: { ':hash': hash },
          }),
        );
        return true;
      },
      () => false,
    );
  }

  function replaceClaim(claim: NameClaim, previousHash: string): Promise<boolean> {
    return conditionally(
      what,
      async () => {
        await client.send(
          new PutCommand({
            TableName: tableName,
            Item: { ...nameKey(claim.name), ...claim },
            ConditionExpression: '#hash = :previous',
            ExpressionAttributeNames: { '#hash': 'hash' },
            ExpressionAttributeValues: { ':previous': previousHash },
          }),
        );
        return true;
      },
      () => false,
    );
  }

  const taken = (name: string) => new ConflictError(`a token named ${name} exists; revoke it first or choose another name`);

  /** Makes `claim` the name's claim: new, ours already, or taken over from a dead (or replaced) one. */
  async function claimName(claim: NameClaim, replace: boolean): Promise<void> {
    for (let attempt = 0; attempt < 3; attempt++) {
      if (await putIfAbsent(client, tableName, { ...nameKey(claim.name), ...claim }, what)) return;
      const current = await getClaim(claim.name);
      if (!current) continue; // revoked meanwhile: try again
      if (current.hash === claim.hash) return; // a retry of the same creation
      const holder = await getToken(current.hash);
      const abandoned = holder
        ? holder.revokedAt !== undefined
        : Date.parse(claim.claimedAt) - Date.parse(current.claimedAt) >= CLAIM_GRACE_MS;
      if (!abandoned && !replace) throw taken(claim.name);
      if (holder && !holder.revokedAt) await markRevoked(current.hash, claim.claimedAt);
      if (await replaceClaim(claim, current.hash)) return;
    }
    throw taken(claim.name);
  }

  const store = {
    async createToken(hash: string, token: StoredToken, options: { replace?: boolean } = {}) {
      await claimName({ name: token.name, hash, claimedAt: token.createdAt, ...expiryOf(token) }, options.replace ?? false);
      if (!(await putIfAbsent(client, tableName, { ...keys.token(hash), ...token, ...expiryOf(token) }, what))) {
        const existing = await getToken(hash);
        if (existing?.name !== token.name || existing.revokedAt) {
          await deleteClaim(token.name, hash);
          throw new ConflictError('that token was stored before (and revoked, or under another name); make a new one');
        }
      }
      // A creation slower than CLAIM_GRACE_MS may have lost its claim to another: then it gives up.
      if ((await getClaim(token.name))?.hash !== hash) {
        await markRevoked(hash, token.createdAt);
        throw taken(token.name);
      }
    },

    getToken,

    async listTokens(): Promise<StoredToken[]> {
      const claims: NameClaim[] = [];
      let start: Item | undefined;
      do {
        const page = await call(() =>
          client.send(
            new QueryCommand({
              TableName: tableName,
              KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
              ExpressionAttributeValues: { ':pk': 'TOKENS', ':prefix': 'NAME#' },
              ConsistentRead: true,
              ExclusiveStartKey: start,
            }),
          ),
        );
        claims.push(...((page.Items ?? []) as unknown as NameClaim[]));
        start = page.LastEvaluatedKey as Item | undefined;
      } while (start);

      const tokens = new Map<string, StoredToken>();
      for (let i = 0; i < claims.length; i += 100) {
        let wanted: Item[] | undefined = claims.slice(i, i + 100).map((claim) => keys.token(claim.hash));
        for (let round = 0; wanted && wanted.length > 0; round++) {
          if (round > 0) await new Promise((resolve) => setTimeout(resolve, 50 * 2 ** Math.min(round, 5)));
          const keysNow: Item[] = wanted;
          const result = await call(() =>
            client.send(new BatchGetCommand({ RequestItems: { [tableName]: { Keys: keysNow, ConsistentRead: true } } })),
          );
          for (const item of result.Responses?.[tableName] ?? []) {
            tokens.set(String(item.pk).slice('TOKEN#'.length), fromItem<StoredToken>(item));
          }
          wanted = result.UnprocessedKeys?.[tableName]?.Keys as Item[] | undefined;
        }
      }
      // Claims of a creation under way, or left by a crash, have no live token behind them.
      return claims.flatMap((claim) => {
        const token = tokens.get(claim.hash);
        return token && !token.revokedAt && token.name === claim.name ? [token] : [];
      });
    },

    async revokeToken(name: string, at: string): Promise<StoredToken | undefined> {
      const claim = await getClaim(name);
      if (!claim) return undefined;
      const holder = await getToken(claim.hash);
      // First refuse the token, then free the name: a crash in between leaves a claim anyone may take.
      const revoked = holder && !holder.revokedAt ? await markRevoked(claim.hash, at) : false;
      await deleteClaim(name, claim.hash);
      return revoked ? { ...holder!, revokedAt: at } : undefined;
    },

    async touchToken(hash: string, at: string, notBefore: string) {
      const write = () =>
        client.send(
          new UpdateCommand({
            TableName: tableName,
            Key: keys.token(hash),
            UpdateExpression: 'SET lastUsedAt = :at',
            ConditionExpression:
              'attribute_exists(pk) AND attribute_not_exists(revokedAt) AND (attribute_not_exists(lastUsedAt) OR lastUsedAt < :notBefore)',
            ExpressionAttributeValues: { ':at': at, ':notBefore': notBefore },
          }),
        );
      // Another request touched it first, or it was revoked meanwhile: nothing to do.
      await conditionally(what, write, () => undefined);
    },

    /**
     * @deprecated A raw write of the token item without a name claim, so without name uniqueness.
     * Kept only for the older adapter test; use createToken.
     */
    async putToken(hash: string, token: StoredToken, options: { onlyIfAbsent?: boolean } = {}) {
      const write = () =>
        client.send(
          new PutCommand({
            TableName: tableName,
            Item: { ...keys.token(hash), ...token, ...expiryOf(token) },
            ...(options.onlyIfAbsent ? { ConditionExpression: 'attribute_not_exists(pk)' } : {}),
          }),
        );
      await conditionally(what, write, () => undefined);
    },
  };
  return store satisfies TokenStore;
}
