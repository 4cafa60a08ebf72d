// One local stand-in on a thread of its own (stand-ins.ts starts it): told what to run in
// workerData, it answers with its port, and on 'close' stops and says so.
//
// Why a thread: in the server's own thread, s3rver streaming a 50 MB artifact to each of 20 hosts
// allocated a gigabyte of buffers there, and V8 answered with major collections of the server's
// whole heap: half the machine's CPU during a release (perf of bench/fleet.ts), with the API and
// the executor waiting behind every chunk. Here the bytes and their collections stay on a small heap
// of their own, and the stand-ins use the second core.
import { parentPort, workerData } from 'node:worker_threads';
import { startDynamoServer, startS3Server } from './stand-in-servers.mjs';

const describe = (error) => ({ message: String(error?.message ?? error), code: error?.code });
try {
  const running = await (workerData.kind === 'dynamodb' ? startDynamoServer(workerData) : startS3Server(workerData));
  parentPort.on('message', (message) => {
    if (message !== 'close') return;
    running.close().then(
      () => parentPort.postMessage({ closed: true }),
      (error) => parentPort.postMessage({ closed: true, error: describe(error) }),
    );
  });
  parentPort.postMessage({ port: running.port });
} catch (error) {
  parentPort.postMessage({ error: describe(error) });
}
