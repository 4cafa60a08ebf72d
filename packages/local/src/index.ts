export * from './config.ts';
export * from './demo.ts';
export * from './dev-server.ts';
export * from './queued-workflow.ts';
export * from './stand-ins.ts';
