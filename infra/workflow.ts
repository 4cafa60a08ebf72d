import { renderStateMachine } from './definitions';

/**
 * The two state machines from statemachines/*.asl.json with their function ARNs filled in, and a role
 * that may invoke exactly those functions.
 */
export function createStateMachines(stageArns: $util.Output<Record<string, string>>) {
  const role = new aws.iam.Role('StateMachineRole', {
    assumeRolePolicy: JSON.stringify({
      Version: '2012-10-17',
      Statement: [{ Effect: 'Allow', Principal: { Service: 'states.amazonaws.com' }, Action: 'sts:AssumeRole' }],
    }),
  });
  new aws.iam.RolePolicy('StateMachineInvoke', {
    role: role.id,
    policy: stageArns.apply((arns) =>
      JSON.stringify({
        Version: '2012-10-17',
        Statement: [{ Effect: 'Allow', Action: 'lambda:InvokeFunction', Resource: Object.values(arns) }],
      }),
    ),
  });
  const machine = (name: string, file: string) =>
    new aws.sfn.StateMachine(name, {
      // Named, not generated: the functions know these ARNs before the machines exist.
      name: `${$app.name}-${$app.stage}-${name}`,
      type: 'STANDARD',
      roleArn: role.arn,
      definition: stageArns.apply((arns) => renderStateMachine(file, arns)),
    });
  return {
    release: machine('ReleaseStateMachine', 'statemachines/release.asl.json'),
    rollback: machine('RollbackStateMachine', 'statemachines/rollback.asl.json'),
  };
}
