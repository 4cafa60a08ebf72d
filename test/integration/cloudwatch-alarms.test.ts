import { CloudWatchClient } from '@aws-sdk/client-cloudwatch';
import { createCloudWatchAlarmMonitor } from '@slipway/aws';
import { probeAnalysis } from '@slipway/core';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { startWireFake, type WireReply, type WireRequest } from '../support/wire-fake.ts';

/**
 * No local CloudWatch exists: a fake speaking its JSON 1.0 protocol (what this SDK sends) checks
 * each DescribeAlarms request and answers as CloudWatch does: only the alarms it knows, a page at a
 * time.
 */
const TARGET = 'GraniteServiceVersion20100801.DescribeAlarms';
let alarms: { AlarmName: string; StateValue: string; composite?: boolean }[] = [];
let pageSize = 100;
let failing = false;

function describeAlarms({ body }: WireRequest): WireReply {
  if (failing) return { status: 400, body: { __type: 'ThrottlingException', message: 'Rate exceeded' }, errorType: 'ThrottlingException' };
  const known = alarms.filter((alarm) => (body.AlarmNames as string[]).includes(alarm.AlarmName));
  const start = body.NextToken ? Number(body.NextToken) : 0;
  const page = known.slice(start, start + pageSize);
  const next = start + pageSize < known.length ? String(start + pageSize) : undefined;
  return {
    body: {
      MetricAlarms: page.filter((a) => !a.composite).map(({ AlarmName, StateValue }) => ({ AlarmName, StateValue })),
      CompositeAlarms: page.filter((a) => a.composite).map(({ AlarmName, StateValue }) => ({ AlarmName, StateValue })),
      ...(next ? { NextToken: next } : {}),
    },
  };
}

let fake: Awaited<ReturnType<typeof startWireFake>>;
let client: CloudWatchClient;

beforeAll(async () => {
  fake = await startWireFake(describeAlarms, 'application/x-amz-json-1.0');
  client = new CloudWatchClient(fake.clientOptions(1));
});
afterAll(async () => {
  client.destroy();
  await fake.close();
});
beforeEach(() => {
  fake.requests.length = 0;
  alarms = [];
  pageSize = 100;
  failing = false;
});

describe('the CloudWatch alarm monitor', () => {
  it('asks DescribeAlarms for exactly the named metric and composite alarms and answers their states', async () => {
    alarms = [
      { AlarmName: 'shop/5xx', StateValue: 'ALARM' },
      { AlarmName: 'shop-latency', StateValue: 'OK', composite: true },
      { AlarmName: 'someone-else', StateValue: 'ALARM' },
    ];
    const states = await createCloudWatchAlarmMonitor(client).describe(['shop/5xx', 'shop-latency', 'missing']);
    expect(states).toEqual([
      { name: 'shop/5xx', state: 'ALARM' },
      { name: 'shop-latency', state: 'OK' },
    ]);
    expect(fake.requests).toHaveLength(1);
    expect(fake.requests[0]).toMatchObject({
      method: 'POST',
      target: TARGET,
      body: { AlarmNames: ['shop/5xx', 'shop-latency', 'missing'], AlarmTypes: ['MetricAlarm', 'CompositeAlarm'], MaxRecords: 100 },
    });
  });

  it('follows NextToken to the last page', async () => {
    pageSize = 2;
    alarms = ['a', 'b', 'c', 'd', 'e'].map((name) => ({ AlarmName: name, StateValue: 'OK' }));
    const states = await createCloudWatchAlarmMonitor(client).describe(['a', 'b', 'c', 'd', 'e']);
    expect(states.map((s) => s.name)).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(fake.requests.map((r) => r.body.NextToken)).toEqual([undefined, '2', '4']);
  });

  it('through an analysis: ALARM fails the probe, an unknown alarm or an error means it could not run', async () => {
    const monitor = createCloudWatchAlarmMonitor(client);
    const analysis = { alarms: ['shop/5xx'], intervalSeconds: 10, failureLimit: 3 };
    alarms = [{ AlarmName: 'shop/5xx', StateValue: 'ALARM' }];
    expect(await probeAnalysis(analysis, { alarms: monitor })).toEqual([{ check: 'alarms shop/5xx', ok: false, ran: true, status: 'ALARM: shop/5xx' }]);
    alarms = [{ AlarmName: 'shop/5xx', StateValue: 'INSUFFICIENT_DATA' }];
    expect((await probeAnalysis(analysis, { alarms: monitor }))[0]).toMatchObject({ ok: true, ran: true });
    alarms = [];
    expect((await probeAnalysis(analysis, { alarms: monitor }))[0]).toMatchObject({ ok: false, ran: false, status: 'no such alarm: shop/5xx' });
    failing = true;
    expect((await probeAnalysis(analysis, { alarms: monitor }))[0]).toMatchObject({ ok: false, ran: false });
    expect((await probeAnalysis(analysis, { alarms: monitor }))[0]!.status).toMatch(/^could not read the alarms: /);
  });
});
