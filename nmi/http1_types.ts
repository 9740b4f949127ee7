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

/** What a handler reads of a request's headers: a fetch `Headers` satisfies it (tests pass one). */
export interface RequestHeaders {
  get(name: string): string | null;
  has(name: string): boolean;
  /** Lower-case names, repeated fields joined with ", " (as `Headers`; the order is not significant). */
  [Symbol.iterator](): IterableIterator<[string, string]>;
}

/**
 * A parsed head's fields, read the way `Headers` reads them (names case-insensitive, repeated fields joined
 * with ", "), without `Headers`' per-field validation: the head parser already refused every name and value
 * `Headers` would (nmi/http1_head.ts), and building a `Headers` cost a cached token's answer several µs.
 */
export class HeadFields implements RequestHeaders {
  #fields = new Map<string, string>();

  constructor(pairs: readonly (readonly [string, string])[]) {
    for (const [k, v] of pairs) {
      const name = k.toLowerCase();
      const prev = this.#fields.get(name);
      this.#fields.set(name, prev === undefined ? v : `${prev}, ${v}`);
    }
  }

  get(name: string): string | null {
    return this.#fields.get(name.toLowerCase()) ?? null;
  }

  has(name: string): boolean {
    return this.#fields.has(name.toLowerCase());
  }

  [Symbol.iterator](): IterableIterator<[string, string]> {
    return this.#fields.entries();
  }
}

/**
 * An answer without a fetch `Response` (whose construction and body read cost a cached token's answer
 * more than the rest of its path): status, headers (lower-case names) and the body's bytes.
 */
export interface PlainAnswer {
  readonly status: number;
  readonly headers: readonly (readonly [string, string])[];
  readonly body: Uint8Array;
}

/**
 * What a handler reads of a request. A fetch `Request` satisfies it; the server builds this lighter object
 * instead (a `Request` costs about 10 us to construct, a large part of a cached token's answer).
 */
export interface IncomingRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: RequestHeaders;
  readonly body: ReadableStream<Uint8Array> | null;
  /** Aborts when the client closes its connection while the answer is being made. */
  readonly signal: AbortSignal;
}

export type Http1Handler = (req: IncomingRequest, info: ConnInfo) => Promise<Response | PlainAnswer>;

export interface Http1Stats {
  accepted: number;
  /** Requests whose head was read and handed to the handler. */
  requests: number;
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
