// The timings and limits of one HTTP/2 connection, with their defaults: how long to wait for the server,
// and how much a server may make this client hold (header lists, unread data, streams, control frames).

export interface Http2Options {
  /** Read nothing for this long with streams open: PING. Default 30 s. */
  pingAfterMs?: number;
  /** No PING answer in this long: the connection is dead. Default 15 s. */
  pingTimeoutMs?: number;
  /** No streams for this long: close. Default 90 s (Go's IdleConnTimeout). */
  idleCloseMs?: number;
  /** TCP connect and TLS handshake within this long. Default 30 s (client-go's dial timeout). */
  connectTimeoutMs?: number;
  /**
   * SETTINGS_MAX_HEADER_LIST_SIZE: announced, and enforced while an answer's header block is decoded
   * (RFC 9113 6.5.2 counting). Default 1 MiB; the apiserver's headers are a few hundred bytes.
   */
  maxHeaderListSize?: number;
  /**
   * What the server may send ahead of the consumers on the whole connection; credited back only as they
   * read (or cancel), so unread answers hold at most this much memory. Default 64 MiB.
   */
  connectionWindow?: number;
  /** The same per stream. Default 4 MiB, as Go's transport. */
  streamWindow?: number;
  /** Streams open at once on this connection, whatever more the server allows. Default 1000. */
  maxConcurrentStreams?: number;
  /** PING and SETTINGS frames answered per second; more ends the connection. Default 1000. */
  maxControlFramesPerSecond?: number;
}

/** Every option but the dial timeout, defaults filled in. */
export type Limits = Required<Omit<Http2Options, "connectTimeoutMs">>;

export function limitsOf(o: Http2Options): Limits {
  return {
    pingAfterMs: o.pingAfterMs ?? 30_000,
    pingTimeoutMs: o.pingTimeoutMs ?? 15_000,
    idleCloseMs: o.idleCloseMs ?? 90_000,
    maxHeaderListSize: o.maxHeaderListSize ?? 1 << 20,
    connectionWindow: o.connectionWindow ?? 64 << 20,
    streamWindow: o.streamWindow ?? 4 << 20,
    maxConcurrentStreams: o.maxConcurrentStreams ?? 1000,
    maxControlFramesPerSecond: o.maxControlFramesPerSecond ?? 1000,
  };
}
