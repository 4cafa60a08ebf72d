// The local stand-ins' thread (stand-ins.ts starts it once and asks it for each stand-in): told
// `{ start, id }`, it starts that server and answers `{ id, port }`; told `{ close, id }`, it stops
// it and answers `{ id, closed }`.
//
// Why a thread: in the server's own thread, s3rver streaming a 50 MB artifact to each of 20 hosts
// allocated a gigabyte of buffers there, and V8 answered with major collections of the server's
// whole heap: half the machine's CPU during a release (perf of bench/fleet.ts), with the API and
// the executor waiting behind every chunk. Here the bytes and their collections stay on a small heap
// of their own, and the stand-ins use the second core. Why one thread for both: each thread is a V8
// heap and a malloc arena of its own, about 25 MB of RSS each at idle (bench/fleet.ts).
import { parentPort } from 'node:worker_threads';
import { startDynamoServer, startS3Server } from './stand-in-servers.mjs';

const describe = (error) => ({ message: String(error?.message ?? error), code: error?.code });
const running = new Map();

parentPort.on('message', async ({ start, close, id }) => {
  if (start) {
    try {
      const server = await (start.kind === 'dynamodb' ? startDynamoServer(start) : startS3Server(start));
      running.set(id, server);
      parentPort.postMessage({ id, port: server.port });
    } catch (error) {
      parentPort.postMessage({ id, error: describe(error) });
    }
    return;
  }
  if (close) {
    const server = running.get(id);
    running.delete(id);
    try {
      await server?.close();
      parentPort.postMessage({ id, closed: true });
    } catch (error) {
      parentPort.postMessage({ id, closed: true, error: describe(error) });
    }
  }
});
