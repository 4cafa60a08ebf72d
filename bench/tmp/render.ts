import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { renderHostScript } from '@slipway/core';
const data = readFileSync('/tmp/tr/a.tar.gz');
const sha256 = createHash('sha256').update(data).digest('hex');
writeFileSync('/tmp/tr/d.sh', renderHostScript({ kind: 'distribute', deployRoot: '/tmp/tr/root', releaseId: process.argv[2] ?? 'r1', version: '1', artifactUrl: 'file:///tmp/tr/a.tar.gz', sha256, sharedPaths: [], postDeploy: '', artifactChecked: true, artifactSize: data.length }));
writeFileSync('/tmp/tr/s.sh', renderHostScript({ kind: 'switch', deployRoot: '/tmp/tr/root', releaseId: process.argv[2] ?? 'r1', switchId: 'x', version: '1', preRelease: '', postRelease: '', healthCheck: 'test -f "$RELEASE_DIR/index.html"', healthCheckAttempts: 1, healthCheckIntervalSeconds: 0 } as any));
