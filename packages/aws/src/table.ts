/**
 * The single DynamoDB table. Every write that must not race is a conditional write on one item
 * (no transactions: local DynamoDB has none, and the design does not need them).
 *
 * | item             | pk                  | sk               | gsi1 (pk / sk)          | gsi2 (pk / sk)     |
 * | app config       | APP#<app>           | CONFIG           |                         | APPS / <app>       |
 * | live per env     | APP#<app>           | LIVE#<env>       |                         |                    |
 * | env lock         | LOCK#<app>#<env>    | LOCK             |                         |                    |
 * | release          | REL#<id>            | RELEASE          | APPREL#<app> / <id>     | RELEASES / <id>    |
 * | release env      | REL#<id>            | ENV#<env>        | ENVREL#<app>#<env> / <id> |                  |
 * | entered hosts    | REL#<id>            | HOSTS#<env>#<digest of hosts> |            |                    |
 * | (written before) | REL#<id>            | HOST#<env>#<host>|                         |                    |
 * | release event    | REL#<id>            | EVENT#<eventId>  |                         |                    |
 * | release plan     | REL#<id>            | PLAN             |                         |                    |
 * | host step output | REL#<id>            | ~OUTPUT#<env>#<host>#<step> |              |                    |
 * | (written before) | REL#<id>            | HOSTSTEP#<env>#<host>#<step> |             |                    |
 * | hosts' outcomes  | REL#<id>            | HOSTSUM#<env>#<step>#<digest of hosts> |   |                    |
 * | workflow step    | REL#<id>            | STEP#<key>       |                         |                    |
 * | command -> step  | CMD#<commandId>     | CMD              |                         |                    |
 * | approval gate    | REL#<id>            | APPROVAL#<env>   |                         |                    |
 * | approver decision| REL#<id>            | DECISION#<env>#<approver> |                |                    |
 * | approval link    | APPLINK#<sha256 of id> | LINK          |                         |                    |
 * | notification     | NOTIFY#<key>        | NOTIFY           |                         |                    |
 * | artifact         | ART#<app>#<sha256>  | ARTIFACT         |                         |                    |
 * | API token        | TOKEN#<sha256>      | TOKEN            |                         |                    |
 * | release plan env | REL#<id>            | PLAN#<env>       |                         |                    |
 * | waiting in line  | QUEUE#<app>#<env>   | WAIT#<releaseId> | QUEUED / <app>#<env>#<releaseId> |           |
 * | token name claim | TOKENS              | NAME#<name>      |                         |                    |
 * | audit entry      | AUDIT               | <ulid>           |                         |                    |
 * | idempotency key  | IDEMPOTENCY#<digest>| IDEMPOTENCY      |                         |                    |
 * | execution (local)| EXEC#<executionId>  | META, EVENT#<id>, FRAME#<frame>, DONE#<frame> | EXECUTIONS#RUNNING / <id> |  |
 *
 * Release ids sort by creation time, so the GSIs list newest first with ScanIndexForward=false.
 * Under `REL#<id>`, what the release read never needs (the hosts' output) sorts after `~`
 * (RELEASE_TAIL): that read is one Query of the keys below it.
 */
export const KEY_ATTRIBUTES = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk'] as const;

export const TABLE_DEFINITION = {
  AttributeDefinitions: KEY_ATTRIBUTES.map((name) => ({ AttributeName: name, AttributeType: 'S' as const })),
  KeySchema: [
    { AttributeName: 'pk', KeyType: 'HASH' as const },
    { AttributeName: 'sk', KeyType: 'RANGE' as const },
  ],
  GlobalSecondaryIndexes: [
    {
      IndexName: 'gsi1',
      KeySchema: [
        { AttributeName: 'gsi1pk', KeyType: 'HASH' as const },
        { AttributeName: 'gsi1sk', KeyType: 'RANGE' as const },
      ],
      Projection: { ProjectionType: 'ALL' as const },
    },
    {
      IndexName: 'gsi2',
      KeySchema: [
        { AttributeName: 'gsi2pk', KeyType: 'HASH' as const },
        { AttributeName: 'gsi2sk', KeyType: 'RANGE' as const },
      ],
      Projection: { ProjectionType: 'ALL' as const },
    },
  ],
  BillingMode: 'PAY_PER_REQUEST' as const,
};

/** Sort keys from here on in a release's partition are left out of the release read. */
export const RELEASE_TAIL = '~';
export const HOST_OUTPUT_PREFIX = `${RELEASE_TAIL}OUTPUT#`;

export const keys = {
  app: (app: string) => ({ pk: `APP#${app}`, sk: 'CONFIG' }),
  live: (app: string, env: string) => ({ pk: `APP#${app}`, sk: `LIVE#${env}` }),
  hostRecord: (app: string, env: string, host: string) => ({ pk: `FLEET#${app}#${env}`, sk: `HOST#${host}` }),
  lock: (app: string, env: string) => ({ pk: `LOCK#${app}#${env}`, sk: 'LOCK' }),
  release: (id: string) => ({ pk: `REL#${id}`, sk: 'RELEASE' }),
  releaseEnv: (id: string, env: string) => ({ pk: `REL#${id}`, sk: `ENV#${env}` }),
  enteredHosts: (id: string, env: string, digest: string) => ({ pk: `REL#${id}`, sk: `HOSTS#${env}#${digest}` }),
  releaseEvent: (id: string, eventId: string) => ({ pk: `REL#${id}`, sk: `EVENT#${eventId}` }),
  plan: (id: string) => ({ pk: `REL#${id}`, sk: 'PLAN' }),
  hostOutput: (id: string, env: string, host: string, step: string) => ({
    pk: `REL#${id}`,
    sk: `${HOST_OUTPUT_PREFIX}${env}#${host}#${step}`,
  }),
  hostOutcomes: (id: string, env: string, step: string, digest: string) => ({ pk: `REL#${id}`, sk: `HOSTSUM#${env}#${step}#${digest}` }),
  step: (id: string, key: string) => ({ pk: `REL#${id}`, sk: `STEP#${key}` }),
  command: (commandId: string) => ({ pk: `CMD#${commandId}`, sk: 'CMD' }),
  approval: (id: string, env: string) => ({ pk: `REL#${id}`, sk: `APPROVAL#${env}` }),
  decision: (id: string, env: string, approver: string) => ({ pk: `REL#${id}`, sk: `DECISION#${env}#${approver}` }),
  approvalLink: (idHash: string) => ({ pk: `APPLINK#${idHash}`, sk: 'LINK' }),
  notification: (key: string) => ({ pk: `NOTIFY#${key}`, sk: 'NOTIFY' }),
  artifact: (app: string, sha256: string) => ({ pk: `ART#${app}#${sha256}`, sk: 'ARTIFACT' }),
  token: (hash: string) => ({ pk: `TOKEN#${hash}`, sk: 'TOKEN' }),
};

/** Strips the key attributes so only the domain object is left. */
export function withoutKeys<T>(item: Record<string, unknown>): T {
  const copy: Record<string, unknown> = { ...item };
  for (const name of KEY_ATTRIBUTES) delete copy[name];
  return copy as T;
}
