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

/**
 * What a handler reads of a request. A fetch `Request` satisfies it; the server builds this lighter object
 * instead (a `Request` costs about 10 us to construct, a large part of a cached token's answer).
 */
export interface IncomingRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: Headers;
  readonly body: ReadableStream<Uint8Array> | null;
  /** Aborts when the client closes its connection while the answer is being made. */
  readonly signal: AbortSignal;
}

export type Http1Handler = (req: IncomingRequest, info: ConnInfo) => Promise<Response>;

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
