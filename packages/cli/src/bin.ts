import { type Io, main } from './main.ts';

const io: Io = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};
process.exitCode = await main(process.argv.slice(2), process.env, io);
