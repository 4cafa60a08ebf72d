/**
 * The address approval and outcome mails come from. SES sends only from a verified identity, so
 * the deploy needs a real one: a missing or example address stops it with the fix, instead of a
 * stack whose every mail is refused. A plain module (no SST globals) so a test can call it.
 */
export function requireSender(env: Record<string, string | undefined>): string {
  const sender = env.SLIPWAY_SENDER?.trim();
  if (!sender) {
    throw new Error('set SLIPWAY_SENDER to an address or domain you can verify in SES, e.g. SLIPWAY_SENDER=deploys@yourcompany.com npx sst deploy');
  }
  const domain = /^[^@\s]+@([^@\s]+\.[^@\s]+)$/.exec(sender)?.[1]?.toLowerCase();
  if (!domain) throw new Error(`SLIPWAY_SENDER must be one email address (name@domain), not "${sender}"`);
  if (/(^|\.)example\.(com|org|net)$/.test(domain) || domain.endsWith('.invalid') || domain.endsWith('.test')) {
    throw new Error(`SLIPWAY_SENDER ${sender} can never be verified in SES: use an address of a domain you control`);
  }
  return sender;
}
