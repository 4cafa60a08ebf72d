import { UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { StepRecord, StepStore } from '@slipway/core';
import type { Item, TableAccess } from './dynamo-table-access.ts';
import { keys, withoutKeys } from './table.ts';

/**
 * Steps (`REL#<id>` / `STEP#<key>`), the command-id lookup a status callback finds them by
 * (`CMD#<commandId>`), and running host commands in gsi2 `STEPS#RUNNING` / `<createdAt>#<id>#<key>`
 * for the reconciling sweep, until they settle.
 */
export function createDynamoStepStore(table: TableAccess): StepStore {
  const { client, get, put, putOnce, queryPage, queryPrefix, conditional } = table;
  return {
    async startStep(step: StepRecord) {
      if (step.commandId) {
        // The lookup goes first: an orphan lookup is harmless, a step the callback cannot find is not.
        await put({ ...keys.command(step.commandId), releaseId: step.releaseId, key: step.key });
      }
      const created = await putOnce(
        {
          ...keys.step(step.releaseId, step.key),
          // Running host commands sit in an index, so the reconciling sweep can find them.
          ...(step.state === 'running' && step.commandId
            ? { gsi2pk: 'STEPS#RUNNING', gsi2sk: `${step.createdAt}#${step.releaseId}#${step.key}` }
            : {}),
          ...step,
        },
        'start step',
      );
      if (created) return { created: true, step };
      return { created: false, step: withoutKeys<StepRecord>((await get(keys.step(step.releaseId, step.key)))!) };
    },

    async replaceStepToken(releaseId, key, taskToken, now) {
      return conditional(
        'replace step token',
        async (tableName) => {
          const result = await client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: keys.step(releaseId, key),
              UpdateExpression: 'SET taskToken = :token, updatedAt = :now',
              ConditionExpression: '#state = :running',
              ExpressionAttributeNames: { '#state': 'state' },
              ExpressionAttributeValues: { ':token': taskToken, ':now': now, ':running': 'running' },
              ReturnValues: 'ALL_NEW',
            }),
          );
          return withoutKeys<StepRecord>(result.Attributes as Item);
        },
        () => undefined,
      );
    },

    async completeStep(releaseId, key, outcome, now) {
      return conditional(
        'complete step',
        async (tableName) => {
          const result = await client.send(
            new UpdateCommand({
              TableName: tableName,
              Key: keys.step(releaseId, key),
              UpdateExpression: [
                'SET #state = :state, updatedAt = :now',
                ...(outcome.output ? ['#output = :output'] : []),
                ...(outcome.error ? ['#error = :error'] : []),
                ...(outcome.cause ? ['#cause = :cause'] : []),
              ].join(', ') + ' REMOVE gsi2pk, gsi2sk',
              ConditionExpression: '#state = :running',
              ExpressionAttributeNames: {
                '#state': 'state',
                ...(outcome.output ? { '#output': 'output' } : {}),
                ...(outcome.error ? { '#error': 'error' } : {}),
                ...(outcome.cause ? { '#cause': 'cause' } : {}),
              },
              ExpressionAttributeValues: {
                ':state': outcome.status,
                ':now': now,
                ':running': 'running',
                ...(outcome.output ? { ':output': outcome.output } : {}),
                ...(outcome.error ? { ':error': outcome.error } : {}),
                ...(outcome.cause ? { ':cause': outcome.cause } : {}),
              },
              ReturnValues: 'ALL_NEW',
            }),
          );
          return { settled: true, step: withoutKeys<StepRecord>(result.Attributes as Item) };
        },
        async () => ({ settled: false, step: withoutKeys<StepRecord>((await get(keys.step(releaseId, key)))!) }),
      );
    },

    async getStep(releaseId, key) {
      const item = await get(keys.step(releaseId, key));
      return item ? withoutKeys<StepRecord>(item) : undefined;
    },

    async getStepByCommand(commandId) {
      const lookup = await get(keys.command(commandId));
      if (!lookup) return undefined;
      const item = await get(keys.step(String(lookup.releaseId), String(lookup.key)));
      return item ? withoutKeys<StepRecord>(item) : undefined;
    },

    async listRunningCommandSteps(limit) {
      const { items } = await queryPage('running steps', {
        IndexName: 'gsi2',
        KeyConditionExpression: 'gsi2pk = :running',
        ExpressionAttributeValues: { ':running': 'STEPS#RUNNING' },
        Limit: limit,
      });
      return items.map((item) => withoutKeys<StepRecord>(item));
    },

    async listSteps(releaseId) {
      return (await queryPrefix(`REL#${releaseId}`, 'STEP#')).map((item) => withoutKeys<StepRecord>(item));
    },
  };
}
