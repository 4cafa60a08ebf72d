export * from './config.ts';
export * from './demo.ts';
export * from './dev-server.ts';
export * from './executor.ts';
export * from './fleet.ts';
export * from './stand-ins.ts';
export * from './outbox.ts';
