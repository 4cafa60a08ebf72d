import { createSsmFleet, loadAwsRuntime, SSH_TARGETS_ON_AWS } from '@slipway/aws';
import { ValidationError } from '@slipway/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { localDynamo, localS3 } from '../support/stand-ins.ts';

/** The Lambda runtime refuses SSH targets when a config is applied: its stages reach hosts through SSM. */
const REGION = 'eu-west-1';
let dynamo: Awaited<ReturnType<typeof localDynamo>>;
let s3: Awaited<ReturnType<typeof localS3>>;

beforeAll(async () => {
  [dynamo, s3] = await Promise.all([localDynamo('slipway-ssh-aws'), localS3('slipway-ssh-aws')]);
  vi.stubEnv('AWS_ENDPOINT_URL_DYNAMODB', dynamo.endpoint);
  vi.stubEnv('AWS_ENDPOINT_URL_S3', s3.endpoint);
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await Promise.all([dynamo?.close(), s3?.close()]);
});

describe('SSH targets on AWS', () => {
  it('are refused when the config is applied, naming the environment and what to use instead', async () => {
    const slipway = await loadAwsRuntime({
      AWS_REGION: REGION,
      SLIPWAY_TABLE: 'slipway-ssh-aws',
      SLIPWAY_BUCKET: 'slipway-ssh-aws',
      SLIPWAY_RELEASE_STATE_MACHINE_ARN: `arn:aws:states:${REGION}:123456789012:stateMachine:release`,
      SLIPWAY_ROLLBACK_STATE_MACHINE_ARN: `arn:aws:states:${REGION}:123456789012:stateMachine:rollback`,
      SLIPWAY_SENDER: 'deploys@example.com',
      SLIPWAY_BASE_URL: 'https://abc123.execute-api.eu-west-1.amazonaws.com',
      SLIPWAY_LOG_LEVEL: 'error',
    });
    const config = (targets: unknown) => ({ name: 'shop', deployRoot: '/srv/shop', environments: [{ name: 'production', targets }] });
    const refused = await slipway.apps.put('shop', config({ ssh: { hosts: ['deploy@web-1'] } }), { name: 'admin', role: 'admin' }).catch((error: unknown) => error);
    expect(refused).toBeInstanceOf(ValidationError);
    expect((refused as ValidationError).details).toEqual([
      { field: 'environments[0].targets.ssh', message: expect.stringMatching(/not supported on AWS.*\{"hosts": \[instance ids\]\}/) },
    ]);
    expect(await slipway.apps.list()).toEqual([]);
    await expect(slipway.apps.put('shop', config({ hosts: ['i-0a1b2c3d4e5f60718'] }), { name: 'admin', role: 'admin' })).resolves.toMatchObject({ revision: 1 });
  });

  it('leave a config stored before unplanned: Prepare finds every host unreachable, saying why', async () => {
    // No AWS call is needed to refuse them: the clients are never touched.
    const fleet = createSsmFleet({ ssm: {} as never, documents: {} as never, tableName: 'unused' });
    expect(await fleet.resolveTargets({ ssh: { hosts: ['deploy@web-1', 'deploy@web-2:2222'] } })).toEqual({
      hosts: [],
      unreachable: [
        { host: 'deploy@web-1', reason: SSH_TARGETS_ON_AWS },
        { host: 'deploy@web-2:2222', reason: SSH_TARGETS_ON_AWS },
      ],
    });
  });
});
