import { DIFF_PREVIEW_PATHS, type ReleaseDiff } from './diffs.ts';
import type { Mail } from './ports.ts';
import type { ArtifactSource } from './schemas.ts';

/**
 * What approvers read: the mail and the decision pages. Plain HTML, every value escaped, no script
 * (nothing a link scanner could trigger), and the pages only ever decide on a POST.
 */
export function escapeHtml(value: string): string {
  return value
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;')
    .replaceAll('\'', '&#39;');
}

export interface ApprovalContext {
  app: string;
  version: string;
  environment: string;
  releaseId: string;
  openedBy: string;
  description: string;
  sha256: string;
  live?: { version: string; id: string; since: string; sha256?: string };
  approver: string;
  required: number;
  approvers: number;
  expiresAt: string;
  now: Date;
  /** The files this release adds, removes and changes here; absent when it could not be known. */
  changes?: ReleaseDiff;
  /** The dashboard's page of the whole diff. */
  diffUrl?: string;
  /** The git commit the artifact was built from, when the pusher said. */
  source?: ArtifactSource;
}

/** "git@github.com:acme/shop.git at 1a2b3c4d5e6f (main), with changes not committed". */
function sourceText(source: ArtifactSource): string {
  const ref = source.ref ? ` (${source.ref})` : '';
  const dirty = source.dirty ? ', with changes not committed' : '';
  return `${source.repository} at ${source.commit.slice(0, 12)}${ref}${dirty}`;
}

function bytesText(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  if (bytes < 1024 * 1024) return `${(bytes / 1024).toFixed(1)} KiB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MiB`;
}

/** "3 added, 1 removed, 12 changed (2.1 MiB new)", or why it is not known. */
function changeSummary(c: ApprovalContext): string {
  const d = c.changes;
  if (!d) return 'not known (no file list of this release)';
  const summary = `${d.files.added.length} added, ${d.files.removed.length} removed, ${d.files.changed.length} changed (${bytesText(d.bytes)} new)`;
  return d.complete ? summary : `${summary}; incomplete: ${d.reason}`;
}

/** Each non-empty list of paths, the first DIFF_PREVIEW_PATHS of it, and how many more. */
function changeLists(c: ApprovalContext): { title: string; paths: string[]; more: number }[] {
  const d = c.changes;
  if (!d) return [];
  return (['added', 'removed', 'changed'] as const)
    .map((kind) => ({ title: kind[0]!.toUpperCase() + kind.slice(1), all: d.files[kind] }))
    .filter(({ all }) => all.length > 0)
    .map(({ title, all }) => ({ title: `${title} (${all.length})`, paths: all.slice(0, DIFF_PREVIEW_PATHS), more: Math.max(0, all.length - DIFF_PREVIEW_PATHS) }));
}

function changesText(c: ApprovalContext): string[] {
  const lists = changeLists(c);
  if (lists.length === 0) return [];
  return [
    '',
    ...lists.flatMap(({ title, paths, more }) => [`${title}:`, ...paths.map((path) => `  ${path}`), ...(more > 0 ? [`  … and ${more} more`] : [])]),
    ...(c.diffUrl ? [`Every file: ${c.diffUrl}`] : []),
  ];
}

function changesHtml(c: ApprovalContext): string {
  const lists = changeLists(c);
  if (lists.length === 0) return '';
  const sections = lists
    .map(({ title, paths, more }) =>
      `<h3>${escapeHtml(title)}</h3><ul>${paths.map((path) => `<li><code>${escapeHtml(path)}</code></li>`).join('')}` +
      `${more > 0 ? `<li>… and ${more} more</li>` : ''}</ul>`)
    .join('\n');
  const link = c.diffUrl ? `<p><a href="${escapeHtml(c.diffUrl)}">Every file in the dashboard</a></p>` : '';
  return `<h2>What changes</h2>\n${sections}\n${link}`;
}

function ago(since: string, now: Date): string {
  const minutes = Math.max(0, Math.round((now.getTime() - Date.parse(since)) / 60_000));
  if (minutes < 90) return `${minutes} minute${minutes === 1 ? '' : 's'}`;
  const hours = Math.round(minutes / 60);
  if (hours < 48) return `${hours} hours`;
  return `${Math.round(hours / 24)} days`;
}

function changeLines(c: ApprovalContext): [string, string][] {
  return [
    ['App', c.app],
    ['Environment', c.environment],
    ['Version', c.live ? `${c.live.version} → ${c.version}` : `${c.version} (first release here)`],
    ['Live now', c.live ? `${c.live.version} (release ${c.live.id}, live for ${ago(c.live.since, c.now)})` : 'nothing'],
    ['Artifact sha256', c.live?.sha256 && c.live.sha256 !== c.sha256 ? `${c.live.sha256} → ${c.sha256}` : c.sha256],
    ['Files', changeSummary(c)],
    ...(c.source ? [['Built from', sourceText(c.source)] as [string, string]] : []),
    ['Opened by', c.openedBy],
    ['Release', c.releaseId],
    ['Approvals needed', `${c.required} of ${c.approvers}`],
    ['Link expires', c.expiresAt],
  ];
}

export function approvalMail(c: ApprovalContext, link: string): Mail {
  const subject = `[Slipway] Approve ${c.app} ${c.version} for ${c.environment}?`;
  const lines = changeLines(c);
  const text = [
    `${c.openedBy} asks to release ${c.app} ${c.version} to ${c.environment}.`,
    '',
    ...lines.map(([label, value]) => `${label}: ${value}`),
    ...changesText(c),
    '',
    'Description:',
    c.description || '(none)',
    '',
    `Review and decide (the link is yours alone and works once): ${link}`,
    '',
    'Opening the link changes nothing; only the buttons on the page decide.',
  ].join('\n');
  const html = `<!doctype html><html><body style="font-family:system-ui,sans-serif;line-height:1.4">
<p>${escapeHtml(c.openedBy)} asks to release <strong>${escapeHtml(c.app)} ${escapeHtml(c.version)}</strong> to <strong>${escapeHtml(c.environment)}</strong>.</p>
<table cellpadding="4">${lines.map(([label, value]) => `<tr><th align="left">${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`).join('')}</table>
${changesHtml(c)}
<p><strong>Description</strong></p><pre style="white-space:pre-wrap">${escapeHtml(c.description || '(none)')}</pre>
<p><a href="${escapeHtml(link)}">Review and decide</a> (the link is yours alone and works once).</p>
<p style="color:#555">Opening the link changes nothing; only the buttons on the page decide.</p>
</body></html>`;
  return { to: [c.approver], subject, text, html };
}

export const PAGE_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'content-security-policy': 'default-src \'none\'; style-src \'unsafe-inline\'; form-action \'self\'; frame-ancestors \'none\'',
};

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:44rem;margin:2rem auto;padding:0 1rem;line-height:1.45;color:#111}
th{text-align:left;padding-right:1rem;vertical-align:top}td{word-break:break-all}textarea{width:100%}
button{font-size:1rem;padding:.5rem 1.25rem;margin-right:.75rem}.approve{background:#0a6b2d;color:#fff;border:0}
.reject{background:#a31515;color:#fff;border:0}.note{color:#555}</style></head>
<body><main><h1>${escapeHtml(title)}</h1>
${body}
</main></body></html>`;
}

export function decisionPage(c: ApprovalContext, form: { action: string; csrf: string; selfApproval: boolean }): string {
  const rows = changeLines(c)
    .map(([label, value]) => `<tr><th scope="row">${escapeHtml(label)}</th><td>${escapeHtml(value)}</td></tr>`)
    .join('\n');
  const approve = form.selfApproval
    ? '<p class="note">You opened this release, so you cannot approve it yourself. You can still reject it.</p>'
    : '<button class="approve" type="submit" name="decision" value="approve">Approve</button>';
  return page(
    `Release ${c.app} ${c.version} to ${c.environment}?`,
    `<p>${escapeHtml(c.openedBy)} asks to release this version. You are deciding as <strong>${escapeHtml(c.approver)}</strong>.</p>
<table>${rows}</table>
${changesHtml(c)}
<h2>Description</h2><pre style="white-space:pre-wrap">${escapeHtml(c.description || '(none)')}</pre>
<form method="post" action="${escapeHtml(form.action)}">
<input type="hidden" name="csrf" value="${escapeHtml(form.csrf)}">
<p><label for="reason">Reason (optional, up to 2000 characters)</label><br>
<textarea id="reason" name="reason" rows="3" maxlength="2000"></textarea></p>
<p>${approve}<button class="reject" type="submit" name="decision" value="reject">Reject</button></p>
</form>
<p class="note">Opening this page changed nothing. Your decision is recorded with your address and the time.</p>`,
  );
}

export function messagePage(title: string, message: string): string {
  return page(title, `<p>${escapeHtml(message)}</p>`);
}
