import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { AWS_SECRET_PARAMETERS } from '@slipway/aws';
import aslValidator from 'asl-validator';
import { describe, expect, it } from 'vitest';
import { renderStateMachine, STAGE_HANDLERS } from '../../infra/definitions.ts';
import { EVENT_HANDLERS, FUNCTION_SECRETS, functionEnvironment, PLAIN_SECRET_VARIABLES, SECRETS, type SecretName } from '../../infra/handlers.ts';
import { requireSender } from '../../infra/sender.ts';
import { hostStatements, MANAGED_HOST_TAG, permissions, RESOURCE_WILDCARD_ONLY } from '../../infra/permissions.ts';
import { STACK_REFS } from '../support/stack-refs.ts';

const refs = STACK_REFS;
const functionArns = Object.fromEntries(
  Object.keys(STAGE_HANDLERS).map((name) => [name, `arn:aws:lambda:eu-west-1:123456789012:function:slipway-prod-${name}`]),
);

describe('the deployed state machines', () => {
  it.each(['statemachines/release.asl.json', 'statemachines/rollback.asl.json'])('%s renders with the stack functions and validates', (file) => {
    const definition = renderStateMachine(file, functionArns);
    expect(definition).not.toMatch(/\$\{/);
    const resources = [...definition.matchAll(/"(?:Resource|FunctionName)": "(arn:aws:lambda:[^"]+)"/g)].map((m) => m[1]!);
    expect(resources.length).toBeGreaterThan(5);
    for (const arn of resources) expect(Object.values(functionArns)).toContain(arn);
    expect(aslValidator(JSON.parse(definition)).errors).toEqual([]);
  });

  it('refuses a placeholder the stack does not define', () => {
    const { Prepare: _missing, ...others } = functionArns;
    expect(() => renderStateMachine('statemachines/release.asl.json', others)).toThrow(/defines no function Prepare/);
  });

  it('points every stage at a handler file in functions/, and every Lambda file is deployed', () => {
    for (const handler of Object.values(STAGE_HANDLERS)) expect(existsSync(`${handler.replace(/\.handler$/, '')}.ts`), handler).toBe(true);
    const deployed = new Set([
      ...Object.values(STAGE_HANDLERS).map((h) => h.replace(/^functions\/|\.handler$/g, '')),
      'api',
      'command-status',
      'execution-failed',
      'sweep',
    ]);
    const files = readdirSync('functions').filter((f) => f.endsWith('.ts') && f !== 'registry.ts').map((f) => f.replace(/\.ts$/, ''));
    expect(files.sort()).toEqual([...deployed].sort());
  });
});

describe('least privilege', () => {
  const all = permissions(refs);

  it('gives every deployed function its own statements', () => {
    expect(Object.keys(all).sort()).toEqual([...Object.keys(STAGE_HANDLERS), 'Api', 'CommandStatus', 'ExecutionFailed', 'Sweep'].sort());
  });

  it('never grants a wildcard action, and "*" resources only where AWS allows nothing narrower', () => {
    for (const [fn, statements] of Object.entries(all)) {
      for (const statement of statements) {
        for (const action of statement.actions) expect(action, fn).toMatch(/^[a-z0-9]+:[A-Za-z]+$/);
        if (statement.resources.includes('*')) {
          for (const action of statement.actions) expect(RESOURCE_WILDCARD_ONLY.has(action), `${fn}: ${action} on *`).toBe(true);
        }
        for (const resource of statement.resources) expect(resource === '*' || resource.startsWith('arn:aws:'), `${fn}: ${resource}`).toBe(true);
      }
    }
  });

  it('gives managed hosts exactly the artifacts to read and the command output to write', () => {
    expect(hostStatements(refs.bucketArn, refs.commandOutputLogGroupArn)).toEqual([
      { actions: ['s3:GetObject'], resources: [`${refs.bucketArn}/artifacts/*`] },
      { actions: ['s3:PutObject'], resources: [`${refs.bucketArn}/command-output/*`] },
      { actions: ['logs:CreateLogStream', 'logs:DescribeLogStreams', 'logs:PutLogEvents'], resources: [`${refs.commandOutputLogGroupArn}:*`] },
      { actions: ['logs:DescribeLogGroups'], resources: ['arn:aws:logs:eu-west-1:123456789012:log-group:*'] },
    ]);
  });

  it('lets only host stages and the host scan (Api) run commands, on the shell document and tagged hosts only', () => {
    for (const [fn, statements] of Object.entries(all)) {
      const sends = statements.filter((s) => s.actions.includes('ssm:SendCommand'));
      if (!['Distribute', 'SwitchBatch', 'RevertBatch', 'Prune', 'Api'].includes(fn)) {
        expect(sends, fn).toEqual([]);
        continue;
      }
      expect(sends.flatMap((s) => s.resources)).toEqual([
        'arn:aws:ssm:eu-west-1::document/AWS-RunShellScript',
        'arn:aws:ec2:eu-west-1:123456789012:instance/*',
        'arn:aws:ssm:eu-west-1:123456789012:managed-instance/*',
      ]);
      expect(sends[1]!.conditions).toEqual([
        { test: 'StringEquals', variable: `ssm:resourceTag/${MANAGED_HOST_TAG.key}`, values: [MANAGED_HOST_TAG.value] },
      ]);
    }
  });

  it('lets only the API (and the sweep, for releases a crash left pending) start executions, and only its own two state machines', () => {
    for (const [fn, statements] of Object.entries(all)) {
      const starts = statements.filter((s) => s.actions.includes('states:StartExecution'));
      if (fn === 'Api' || fn === 'Sweep') expect(starts[0]!.resources).toEqual([refs.releaseStateMachineArn, refs.rollbackStateMachineArn]);
      else expect(starts, fn).toEqual([]);
    }
  });

  it('grants what the code sends beyond the basics: heartbeats to the sweep, StopExecution to the API, SES on the configuration set too', () => {
    const actions = (fn: string) => all[fn]!.flatMap((s) => s.actions);
    expect(actions('Sweep')).toContain('states:SendTaskHeartbeat');
    expect(actions('Api')).toContain('states:StopExecution');
    for (const [fn, statements] of Object.entries(all)) {
      for (const statement of statements.filter((s) => s.actions.includes('ses:SendEmail'))) {
        expect(statement.resources, fn).toEqual([refs.senderIdentityArn, refs.senderConfigurationSetArn]);
      }
    }
  });
});

describe('secrets', () => {
  const all = permissions(refs);
  const deployed = [...Object.keys(STAGE_HANDLERS), ...Object.keys(EVENT_HANDLERS), 'Api'];
  /** Who needs what, from the code (infra/handlers.ts says why): written out here so a change is a decision. */
  const expected: Record<string, SecretName[]> = {
    Api: ['SigningKey', 'AdminToken'],
    FailEnvironment: ['WebhookSecret'],
    RecordFailure: ['WebhookSecret'],
    Finalize: ['WebhookSecret'],
    ExecutionFailed: ['WebhookSecret'],
  };
  const shared = {
    SLIPWAY_TABLE: 'slipway-prod-Releases',
    SLIPWAY_BUCKET: 'slipway-prod-artifacts',
    SLIPWAY_RELEASE_STATE_MACHINE_ARN: refs.releaseStateMachineArn,
    SLIPWAY_ROLLBACK_STATE_MACHINE_ARN: refs.rollbackStateMachineArn,
    SLIPWAY_SENDER: 'deploys@example.com',
    SLIPWAY_BASE_URL: 'https://abc123.execute-api.eu-west-1.amazonaws.com',
  };
  const names = { SigningKey: '/slipway/prod/signing-key', AdminToken: '/slipway/prod/admin-token', WebhookSecret: '/slipway/prod/webhook-secret' };

  it('names each parameter by the variables the Lambda runtime reads', () => {
    expect(Object.values(SECRETS).map((s) => s.variable).sort()).toEqual(Object.values(AWS_SECRET_PARAMETERS).sort());
  });

  it.each(deployed)('%s may read exactly the parameters of the secrets it uses, and its environment names only those', (fn) => {
    const granted = expected[fn] ?? [];
    expect(FUNCTION_SECRETS[fn] ?? [], fn).toEqual(granted);
    const reads = all[fn]!.filter((s) => s.actions.some((a) => a.startsWith('ssm:GetParameter')));
    expect(reads, fn).toEqual(granted.length === 0 ? [] : [{ actions: ['ssm:GetParameter'], resources: granted.map((s) => refs.secretParameterArns[s]) }]);
    // The AWS managed key aws/ssm lets the account's principals decrypt through Parameter Store.
    expect(all[fn]!.flatMap((s) => s.actions).filter((a) => a.startsWith('kms:')), fn).toEqual([]);
    const environment = functionEnvironment(fn, shared, names);
    expect(environment, fn).toEqual({ ...shared, ...Object.fromEntries(granted.map((s) => [SECRETS[s].variable, names[s]])) });
  });

  it('puts no secret value in any environment, and refuses a shared variable that would carry one', () => {
    for (const variable of PLAIN_SECRET_VARIABLES) {
      expect(() => functionEnvironment('Api', { ...shared, [variable]: 'x'.repeat(40) }, names)).toThrow(new RegExp(`${variable} would put a secret`));
    }
    expect(() => functionEnvironment('Prepare', { ...shared, SLIPWAY_GITHUB_TOKEN: 'x' }, names)).toThrow(/SLIPWAY_GITHUB_TOKEN/);
    // The stack touches a secret in one place: where it writes the SecureString parameters.
    const readers = ['sst.config.ts', ...readdirSync('infra').map((f) => `infra/${f}`)].filter((file) =>
      /sst\.Secret|\b(signingKey|adminToken|webhookSecret)\b/.test(readFileSync(file, 'utf8')),
    );
    expect(readers).toEqual(['infra/secrets.ts']);
    expect(readFileSync('infra/secrets.ts', 'utf8')).toMatch(/type: 'SecureString'/);
  });
});

describe('the mail sender', () => {
  it('is required at deploy and must be an address SES can verify', () => {
    expect(() => requireSender({})).toThrow(/set SLIPWAY_SENDER/);
    expect(() => requireSender({ SLIPWAY_SENDER: 'deploys@example.com' })).toThrow(/can never be verified/);
    expect(() => requireSender({ SLIPWAY_SENDER: 'not an address' })).toThrow(/one email address/);
    expect(requireSender({ SLIPWAY_SENDER: 'deploys@shop.io' })).toBe('deploys@shop.io');
  });
});
