import middy from '@middy/core';
import { parse } from '@slipway/core';
import { z } from 'zod';
import { awsStages } from './lib/aws.ts';
import type { StagesLoader } from './lib/stage.ts';

/**
 * The callback that completes a host command: an "EC2 Command Status-change Notification" from
 * EventBridge on AWS, and the same event shape from the local fleet. Only terminal statuses matter.
 */
const CommandStatusEvent = z.object({
  source: z.literal('aws.ssm'),
  'detail-type': z.literal('EC2 Command Status-change Notification'),
  detail: z.object({ 'command-id': z.string().min(1).max(128), status: z.string() }),
});
const TERMINAL = new Set(['Success', 'Failed', 'Cancelled', 'TimedOut']);

export function create(load: StagesLoader) {
  return middy<unknown, null>().handler(async (event) => {
    const { detail } = parse(CommandStatusEvent, event, 'command status event');
    if (TERMINAL.has(detail.status)) await (await load()).commandFinished(detail['command-id']);
    return null;
  });
}

export const handler = create(awsStages);
