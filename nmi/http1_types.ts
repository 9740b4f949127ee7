// The shapes NMI's HTTP/1.1 server shares with its connections: limits, who sent a request, the handler.

export interface Http1Limits {
  maxHeadBytes: number;
  headTimeoutMs: number;
  idleTimeoutMs: number;
  bodyTimeoutMs: number;
  maxConnectionsPerIp: number;
  maxConnections: number;
}

export const DEFAULT_LIMITS: Http1Limits = {
  maxHeadBytes: 64 * 1024,
  headTimeoutMs: 10_000,
  idleTimeoutMs: 30_000,
  bodyTimeoutMs: 10_000,
  maxConnectionsPerIp: 1024,
  maxConnections: 8192,
};

/** Who sent a request: the connection's peer and the request-target exactly as sent. */
export interface ConnInfo {
  remoteAddr: Deno.NetAddr;
  target?: string;
}

export type Http1Handler = (req: Request, info: ConnInfo) => Promise<Response>;

export interface Http1Stats {
  accepted: number;
  refusedPerIp: number;
  refusedTotal: number;
  acceptErrors: number;
  timedOut: number;
}

/** Closes a socket or listener that may already be closed. */
export function closeQuietly(c: { close(): void }): void {
  try {
    c.close();
  } catch { /* already closed */ }
}
