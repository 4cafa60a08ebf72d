/**
 * The one hand-kept part of the IAM proof: which functions call each method of the Workflow,
 * Fleet and AlarmMonitor ports.
 *
 * Why by hand: the local runtime has no Step Functions or SSM client (the executor and the folder
 * fleet stand in for them), so the end-to-end run sees the DynamoDB and S3 calls of each function,
 * but not the AWS calls behind `workflow.*` and `fleet.*`. Those are recorded at the wire level
 * (wire.ts runs the real AWS adapters against the wire fake, one method at a time), and this map says
 * whose calls they are. Mail needs no entry: the end-to-end run mirrors every mail to the real SES
 * adapter inside the function that sent it.
 *
 * Read from the code (packages/core/src, functions/); keep it in step when a caller changes.
 */
export const PORT_CALLERS: Record<string, readonly string[]> = {
  // releases.open and releases.rollback (Api), releases.startOrphans (Sweep).
  'workflow.startRelease': ['Api', 'Sweep'],
  // releases.startOrphans checks for an execution first (Sweep); releases.history (Api).
  'workflow.releaseHistory': ['Api', 'Sweep'],
  // releases.cancel of a release still pending (Api).
  'workflow.stopRelease': ['Api'],
  // deliverOutcome (steps.ts): approval decisions and cancelGates (Api), expireDue and
  // reconcileCommands -> commandFinished (Sweep), commandFinished (CommandStatus), and a stage called
  // again on a step already settled: runCommandStep (Distribute, SwitchBatch, RevertBatch, Prune),
  // awaitApproval and approvals.request on a gate already decided (AwaitApproval). The environment
  // line (stages.enter, wakeNext): EnterEnvironment completes its own token or dismisses an ended
  // waiter ahead; whoever frees a lock wakes the first in line (CompleteEnvironment,
  // FailEnvironment, RecordFailure, ExecutionFailed); the sweep wakes lines left waiting (Sweep).
  'workflow.sendTaskSuccess': [
    'Api', 'Sweep', 'CommandStatus', 'Distribute', 'SwitchBatch', 'RevertBatch', 'Prune', 'AwaitApproval',
    'EnterEnvironment', 'CompleteEnvironment', 'FailEnvironment', 'RecordFailure', 'ExecutionFailed',
  ],
  'workflow.sendTaskFailure': [
    'Api', 'Sweep', 'CommandStatus', 'Distribute', 'SwitchBatch', 'RevertBatch', 'Prune', 'AwaitApproval',
    'EnterEnvironment', 'CompleteEnvironment', 'FailEnvironment', 'RecordFailure', 'ExecutionFailed',
  ],
  // stages.reconcileCommands (Sweep).
  'workflow.sendTaskHeartbeat': ['Sweep'],
  // stages.prepare (Prepare); the host list and its scan (host-inventory.ts: list, scan) (Api).
  'fleet.resolveTargets': ['Prepare', 'Api'],
  // runCommandStep (stages.ts) from distribute, switchBatch, revertBatch, prune; the host scan (Api).
  'fleet.send': ['Distribute', 'SwitchBatch', 'RevertBatch', 'Prune', 'Api'],
  // stages.commandFinished: the status event (CommandStatus) and reconcileCommands (Sweep); the
  // host scan waits for its own command's results (Api).
  'fleet.results': ['CommandStatus', 'Sweep', 'Api'],
  // Live host output (host-output.ts) (Api).
  'fleet.readOutput': ['Api'],
  // stages.watch probes an environment's analysis through its bakes and timed pauses (Watch).
  'alarms.describe': ['Watch'],
};
