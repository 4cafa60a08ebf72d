import { readAwsEnvironment } from '@slipway/aws';
import { ConfigurationError } from '@slipway/core';
import { readLocalEnvironment } from '@slipway/local';
import { describe, expect, it } from 'vitest';

describe('configuration read at the edge', () => {
  it('gives the dev server its defaults', () => {
    expect(readLocalEnvironment({})).toEqual({
      PORT: 8787,
      SLIPWAY_DATA_DIR: '.slipway',
      SLIPWAY_LOG_LEVEL: 'info',
    });
  });

  it('names the variable to fix', () => {
    expect(() => readLocalEnvironment({ PORT: 'eighty' })).toThrow(ConfigurationError);
    expect(() => readLocalEnvironment({ PORT: 'eighty' })).toThrow(/PORT/);
    expect(() => readLocalEnvironment({ SLIPWAY_ADMIN_TOKEN: 'short' })).toThrow(
      /SLIPWAY_ADMIN_TOKEN must be 16 to 256/,
    );
    expect(() => readLocalEnvironment({ SLIPWAY_LOG_LEVEL: 'loud' })).toThrow(/SLIPWAY_LOG_LEVEL/);
  });

  it('stops a Lambda cold start that lacks its table, bucket or state machine', () => {
    const complete = {
      AWS_REGION: 'eu-west-1',
      SLIPWAY_TABLE: 'slipway',
      SLIPWAY_BUCKET: 'slipway-artifacts',
      SLIPWAY_RELEASE_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:release',
      SLIPWAY_ROLLBACK_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:rollback',
      SLIPWAY_SENDER: 'deploys@example.com',
      SLIPWAY_BASE_URL: 'https://deploy.example.com/',
      SLIPWAY_SIGNING_KEY: 'k'.repeat(32),
    };
    expect(readAwsEnvironment(complete)).toMatchObject({
      SLIPWAY_TABLE: 'slipway',
      SLIPWAY_LOG_LEVEL: 'info',
    });
    const { SLIPWAY_BUCKET: _bucket, ...withoutBucket } = complete;
    expect(() => readAwsEnvironment(withoutBucket)).toThrow(/SLIPWAY_BUCKET/);
    expect(() => readAwsEnvironment({ ...complete, SLIPWAY_RELEASE_STATE_MACHINE_ARN: 'release' })).toThrow(
      /SLIPWAY_RELEASE_STATE_MACHINE_ARN/,
    );
  });
});
