import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { AlarmMonitor, AlarmState } from '@slipway/core';

const STATES: readonly AlarmState[] = ['OK', 'ALARM', 'INSUFFICIENT_DATA'];

/** The file that stands for an alarm: its name made safe as one file name (alarm names may hold "/"). */
export function alarmFile(alarmsDir: string, name: string): string {
  return join(alarmsDir, encodeURIComponent(name));
}

/**
 * The local stand-in for CloudWatch alarms: an alarm is the file `<dataDir>/alarms/<name>` (the name
 * URI-encoded) holding its state, `OK`, `ALARM` or `INSUFFICIENT_DATA`. An alarm with no file does
 * not exist (left out, as DescribeAlarms leaves it out); a file holding anything else is an error,
 * so a typo fails the analysis instead of passing it.
 */
export function createFileAlarmMonitor(alarmsDir: string): AlarmMonitor {
  return {
    async describe(names) {
      const found: { name: string; state: AlarmState }[] = [];
      for (const name of names) {
        let text: string;
        try {
          text = (await readFile(alarmFile(alarmsDir, name), 'utf8')).trim();
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw error;
        }
        const state = STATES.find((s) => s === text);
        if (!state) throw new Error(`the alarm file of ${name} holds "${text.slice(0, 40)}", not one of ${STATES.join(', ')}`);
        found.push({ name, state });
      }
      return found;
    },
  };
}
