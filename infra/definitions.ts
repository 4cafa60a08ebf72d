import { readFileSync } from 'node:fs';

/** The ASL files with their `${NameFunctionArn}` placeholders filled in, as the stack deploys them. */
export function renderStateMachine(file: string, functionArns: Record<string, string>): string {
  const text = readFileSync(file, 'utf8');
  return text.replace(/\$\{(\w+)FunctionArn\}/g, (placeholder, name: string) => {
    const arn = functionArns[name];
    if (!arn) throw new Error(`${file} names ${placeholder}, but the stack defines no function ${name}`);
    return arn;
  });
}

/** The stage functions the state machines call, by placeholder name, and their handler files. */
export const STAGE_HANDLERS = {
  Prepare: 'functions/prepare.handler',
  EnterEnvironment: 'functions/enter-environment.handler',
  Distribute: 'functions/distribute.handler',
  AwaitApproval: 'functions/await-approval.handler',
  SwitchBatch: 'functions/switch-batch.handler',
  BakeUntil: 'functions/bake-until.handler',
  CompleteEnvironment: 'functions/complete-environment.handler',
  PlanRevert: 'functions/plan-revert.handler',
  RevertBatch: 'functions/revert-batch.handler',
  FailEnvironment: 'functions/fail-environment.handler',
  RecordFailure: 'functions/record-failure.handler',
  Prune: 'functions/prune.handler',
  Finalize: 'functions/finalize.handler',
} as const;
