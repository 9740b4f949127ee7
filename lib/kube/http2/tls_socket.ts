// The TLS socket under an HTTP/2 connection, on Deno's own sockets. It was node:tls, and importing any node:
// module starts Deno's Node compatibility layer: node:tls and node:net cost every MIC and NMI process about
// 7 MiB of RSS (measured by a probe beside the same apiserver: 46.4 MiB against 39.1 for a bare process).
//
// Nagle's algorithm: Deno.connectTls leaves it on, so a small write after a small write waits for the
// server's delayed ACK (43 ms per TLS handshake measured with a client certificate). Deno.startTls takes a
// TCP socket already set to TCP_NODELAY, but cannot present a client certificate. So a connection is
// TCP + startTls unless the kubeconfig's user authenticates with a client certificate; in a pod (a
// service-account token) that is always the case. With a certificate, connectTls: Nagle then costs the
// handshake its delayed ACK, and no more in the steady state, because a connection writes each tick's
// frames in one write (connection.ts).

/** Where to connect and with which TLS material (PEM). */
export interface TlsTarget {
  hostname: string;
  port: number;
  caCerts?: string[];
  cert?: string;
  key?: string;
}

/** Connects and completes the TLS handshake offering `alpn`; rejects after `timeoutMs`. */
export async function openTls(
  target: TlsTarget,
  alpn: string[],
  timeoutMs: number,
): Promise<{ conn: Deno.TlsConn; protocol: string | null }> {
  const abort = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      abort.abort();
      reject(new Error(`no TLS connection within ${timeoutMs} ms`));
    }, timeoutMs);
  });
  const opening = handshake(target, alpn, abort.signal);
  try {
    return await Promise.race([opening, timedOut]);
  } catch (e) {
    // A connection that completes after the timeout is closed then.
    opening.then(({ conn }) => closeQuietly(conn), () => {});
    throw explained(e);
  } finally {
    clearTimeout(timer);
  }
}

async function handshake(
  target: TlsTarget,
  alpn: string[],
  signal: AbortSignal,
): Promise<{ conn: Deno.TlsConn; protocol: string | null }> {
  const tls = { hostname: target.hostname, alpnProtocols: alpn, caCerts: target.caCerts };
  let conn: Deno.TlsConn;
  if (target.cert && target.key) {
    conn = await Deno.connectTls({ ...tls, port: target.port, cert: target.cert, key: target.key });
  } else {
    const tcp = await Deno.connect({ hostname: target.hostname, port: target.port, signal });
    tcp.setNoDelay(true);
    conn = await Deno.startTls(tcp, tls);
  }
  try {
    return { conn, protocol: (await conn.handshake()).alpnProtocol };
  } catch (e) {
    closeQuietly(conn);
    throw e;
  }
}

/** rustls names an untrusted certificate's issuer "UnknownIssuer"; say what that means here. */
function explained(e: unknown): unknown {
  if (!(e instanceof Error) || !/\bUnknownIssuer\b/.test(e.message)) return e;
  return new Error(
    `the server's certificate is not signed by a trusted certificate authority (${e.message})`,
    {
      cause: e,
    },
  );
}

export function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

/**
 * Writes in order, each whole (a socket write may take part of its bytes), and counts what is not yet
 * written, so a peer that stops reading is noticed. A failed write calls `onError` once; later writes are
 * dropped.
 */
export class SocketWriter {
  readonly #conn: Deno.Conn;
  readonly #onError: (e: unknown) => void;
  #queue: Uint8Array[] = [];
  #unsent = 0;
  #pumping: Promise<void> | undefined;
  #failed = false;

  constructor(conn: Deno.Conn, onError: (e: unknown) => void) {
    this.#conn = conn;
    this.#onError = onError;
  }

  /** Bytes handed to write() and not yet taken by the socket. */
  get unsent(): number {
    return this.#unsent;
  }

  write(bytes: Uint8Array): void {
    if (this.#failed || bytes.length === 0) return;
    this.#queue.push(bytes);
    this.#unsent += bytes.length;
    this.#pumping ??= this.#pump();
  }

  /** Resolves once everything written so far is out (or the socket failed). */
  async drained(): Promise<void> {
    while (this.#pumping) await this.#pumping;
  }

  async #pump(): Promise<void> {
    try {
      while (this.#queue.length) {
        let bytes = this.#queue.shift()!;
        while (bytes.length) {
          const n = await this.#conn.write(bytes);
          bytes = bytes.subarray(n);
          this.#unsent -= n;
        }
      }
    } catch (e) {
      this.#failed = true;
      this.#queue = [];
      this.#unsent = 0;
      this.#onError(e);
    } finally {
      this.#pumping = undefined;
    }
  }
}
