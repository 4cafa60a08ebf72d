export interface StandInServer {
  port: number;
  close(): Promise<void>;
}
export function startDynamoServer(options: { directory?: string }): Promise<StandInServer>;
export function startS3Server(options: { directory: string; port: number }): Promise<StandInServer>;
