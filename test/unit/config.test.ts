import { AWS_SECRET_PARAMETERS, readAwsEnvironment } from '@slipway/aws';
import { ConfigurationError } from '@slipway/core';
import { readLocalEnvironment } from '@slipway/local';
import { describe, expect, it } from 'vitest';

/** The variables that once carried a secret's value, and the one naming its parameter now. */
const AWS_PLAIN_TO_PARAMETER = {
  SLIPWAY_SIGNING_KEY: AWS_SECRET_PARAMETERS.signingKey,
  SLIPWAY_ADMIN_TOKEN: AWS_SECRET_PARAMETERS.adminToken,
  SLIPWAY_WEBHOOK_SECRET: AWS_SECRET_PARAMETERS.webhookSecret,
};

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

  it('takes the names of secret parameters, never a secret, and names the variable to fix', () => {
    const complete = {
      AWS_REGION: 'eu-west-1',
      SLIPWAY_TABLE: 'slipway',
      SLIPWAY_BUCKET: 'slipway-artifacts',
      SLIPWAY_RELEASE_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:release',
      SLIPWAY_ROLLBACK_STATE_MACHINE_ARN: 'arn:aws:states:eu-west-1:123456789012:stateMachine:rollback',
      SLIPWAY_SENDER: 'deploys@example.com',
      SLIPWAY_BASE_URL: 'https://deploy.example.com/',
    };
    expect(readAwsEnvironment({ ...complete, SLIPWAY_SIGNING_KEY_PARAMETER: '/slipway/prod/signing-key' })).toMatchObject({
      SLIPWAY_SIGNING_KEY_PARAMETER: '/slipway/prod/signing-key',
    });
    expect(() => readAwsEnvironment({ ...complete, SLIPWAY_WEBHOOK_SECRET_PARAMETER: 'webhook secret' })).toThrow(
      /SLIPWAY_WEBHOOK_SECRET_PARAMETER must be an SSM parameter name/,
    );
    const secret = 'a-secret-that-must-stay-out-of-messages-0123456789';
    for (const [variable, parameter] of Object.entries(AWS_PLAIN_TO_PARAMETER)) {
      let message = '';
      try {
        readAwsEnvironment({ ...complete, [variable]: secret });
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigurationError);
        message = (error as Error).message;
      }
      expect(message).toContain(`${variable} must not be set`);
      expect(message).toContain(parameter);
      expect(message).not.toContain(secret);
    }
  });
});
