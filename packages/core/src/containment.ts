/**
 * The containment rules an artifact must pass before it may become a release: nothing in it may make
 * the distribute step, or a later reader of the release, write or land outside the release folder.
 * The same rules run on every host (host-scripts.ts, `inspect_artifact`) over GNU tar's listing, with
 * the same wording; here they run once on the server over the archive read for its manifest, so a
 * refused artifact fails the release before any host is touched, and hosts of a checked one skip
 * listing the archive again.
 */

/** A member's kind, as tar's verbose listing shows it by its first letter. */
export type MemberKind = 'file' | 'folder' | 'link' | 'hardlink' | 'device' | 'fifo' | 'socket' | 'other';

export interface ArchiveMember {
  /** The name as stored in the archive, not normalized. */
  name: string;
  kind: MemberKind;
  /** A symbolic link's target, as stored. */
  target?: string;
  /** For `other`: the archive's own name for the type, shown in the refusal. */
  typeName?: string;
}

/** The path in the release: "./" in front, "/" behind, empty and "." segments dropped. */
function releasePath(name: string): string {
  return name
    .split('/')
    .filter((segment) => segment !== '' && segment !== '.')
    .join('/');
}

/** As GNU tar's escape quoting style shows a name: one line, backslashes and unusual bytes escaped. */
export function displayName(name: string): string {
  return name.replace(/[\\\u0000-\u001f\u007f]/g, (char) => {
    if (char === '\\') return '\\\\';
    if (char === '\n') return '\\n';
    if (char === '\t') return '\\t';
    return `\\${char.charCodeAt(0).toString(8).padStart(3, '0')}`;
  });
}

/**
 * Why the symbolic link at `path` (in the release) pointing to `target` does not stay inside the
 * release; undefined when it does. `through` holds the release's symbolic links and shared paths:
 * below one, the text no longer says where a ".." leads, so none may follow one; going down through
 * one is fine, since every link in the release is itself held to this rule.
 */
export function linkLeavesRelease(path: string, target: string, through: ReadonlySet<string>): string | undefined {
  if (target.startsWith('/')) return 'its target is an absolute path';
  let dir = path.includes('/') ? path.slice(0, path.lastIndexOf('/')) : '';
  let walked = false;
  let passed = '';
  for (const part of target.split('/')) {
    if (part === '' || part === '.') continue;
    if (!passed && walked && dir && through.has(dir)) passed = dir;
    if (part === '..') {
      if (passed) return `its target climbs with '..' after going through '${displayName(passed)}', a symbolic link in the release`;
      if (!dir) return 'its target is outside the release';
      dir = dir.includes('/') ? dir.slice(0, dir.lastIndexOf('/')) : '';
    } else {
      dir = dir ? `${dir}/${part}` : part;
      walked = true;
    }
  }
  return undefined;
}

const KIND_REFUSALS: Partial<Record<MemberKind, string>> = {
  hardlink: 'is a hard link (hard links are refused)',
  device: 'is a device node',
  fifo: 'is a FIFO',
  socket: 'is a socket',
};

/**
 * Reads an archive's members one by one (`add` answers the first refusal at once, when one member
 * alone breaks a rule), then `finish` checks what only the whole archive shows: members inside a
 * symbolic link, and each link's target. Memory grows with the number of links and folders only.
 */
export function createContainmentCheck() {
  /** Each symbolic link's target and its member name, by its path in the release. */
  const links = new Map<string, { target: string; name: string }>();
  /** Every folder some member lies in, with the first such member's name. */
  const parents = new Map<string, string>();

  function add(member: ArchiveMember): string | undefined {
    const shown = displayName(member.name);
    if (member.name.startsWith('/')) return `member '${shown}' is an absolute path`;
    if (member.name.split('/').includes('..')) return `member '${shown}' has a '..' segment`;
    const refusal = KIND_REFUSALS[member.kind];
    if (refusal) return `member '${shown}' ${refusal}`;
    if (member.kind === 'other') {
      return `member '${shown}' has a type that is not a file, folder or symbolic link (${member.typeName ?? 'unknown'})`;
    }
    const path = releasePath(member.name);
    if (!path) return member.kind === 'folder' ? undefined : `member '${shown}' would replace the release folder itself`;
    if (member.kind === 'link') links.set(path, { target: member.target ?? '', name: member.name });
    for (let end = path.lastIndexOf('/'); end > 0; end = path.lastIndexOf('/', end - 1)) {
      const parent = path.slice(0, end);
      if (parents.has(parent)) break;
      parents.set(parent, member.name);
    }
    return undefined;
  }

  /** What the whole archive breaks, if anything; `sharedPaths` become links on every host. */
  function finish(sharedPaths: readonly string[] = []): string | undefined {
    for (const [path, link] of links) {
      const inside = parents.get(path);
      if (inside !== undefined) {
        return `member '${displayName(inside)}' is inside the symbolic link '${displayName(link.name)}', so it would be written wherever that points`;
      }
    }
    return linkRefusal(
      [...links].map(([path, link]) => ({ path, target: link.target, name: link.name })),
      sharedPaths,
    );
  }

  return { add, finish };
}

/** The first symbolic link whose target leaves the release, given the release's links and shared paths. */
export function linkRefusal(
  links: readonly { path: string; target: string; name?: string }[],
  sharedPaths: readonly string[],
): string | undefined {
  const through = new Set([...links.map((link) => link.path), ...sharedPaths]);
  for (const link of links) {
    const reason = linkLeavesRelease(link.path, link.target, through);
    if (reason) {
      return `member '${displayName(link.name ?? link.path)}' is a symbolic link to '${displayName(link.target)}' and ${reason}`;
    }
  }
  return undefined;
}
