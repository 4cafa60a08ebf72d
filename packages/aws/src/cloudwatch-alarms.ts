import { type CloudWatchClient, DescribeAlarmsCommand } from '@aws-sdk/client-cloudwatch';
import type { AlarmMonitor, AlarmState } from '@slipway/core';

/** DescribeAlarms takes at most 100 names a call (the config allows no more than that per environment). */
const NAMES_PER_CALL = 100;
const STATES = new Set<string>(['OK', 'ALARM', 'INSUFFICIENT_DATA']);

/**
 * An analysis's alarms read with CloudWatch DescribeAlarms: metric and composite alarms, by name.
 * Names CloudWatch does not know are left out of the answer (the analysis says which). Errors are
 * the SDK's own (after its retries); the analysis records them as a probe that could not run.
 */
export function createCloudWatchAlarmMonitor(cloudwatch: CloudWatchClient): AlarmMonitor {
  return {
    async describe(names) {
      const found: { name: string; state: AlarmState }[] = [];
      for (let i = 0; i < names.length; i += NAMES_PER_CALL) {
        const batch = names.slice(i, i + NAMES_PER_CALL);
        let nextToken: string | undefined;
        do {
          const page = await cloudwatch.send(
            new DescribeAlarmsCommand({ AlarmNames: batch, AlarmTypes: ['MetricAlarm', 'CompositeAlarm'], MaxRecords: NAMES_PER_CALL, ...(nextToken ? { NextToken: nextToken } : {}) }),
          );
          for (const alarm of [...(page.MetricAlarms ?? []), ...(page.CompositeAlarms ?? [])]) {
            if (alarm.AlarmName && alarm.StateValue && STATES.has(alarm.StateValue)) {
              found.push({ name: alarm.AlarmName, state: alarm.StateValue as AlarmState });
            }
          }
          nextToken = page.NextToken;
        } while (nextToken);
      }
      return found;
    },
  };
}
