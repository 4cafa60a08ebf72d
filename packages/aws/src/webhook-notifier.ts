import { DependencyUnavailableError, type Notifier } from '@slipway/core';

/** JSON POSTs to an app's webhook; a slow or failing endpoint gives up after a few seconds. */
export function createWebhookNotifier(timeoutMs = 5000): Notifier {
  return {
    async post(url, payload) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'slipway' },
        body: JSON.stringify(payload),
        signal: AbortSignal.timeout(timeoutMs),
      });
      if (!response.ok) throw new DependencyUnavailableError(`the webhook answered HTTP ${response.status}`);
    },
  };
}
