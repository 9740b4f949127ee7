// The TLS socket under an HTTP/2 connection. Importing any node: module starts Deno's Node compatibility
// layer: node:tls and node:net cost every MIC and NMI process about 7 MiB of RSS (measured by a probe beside
// the same apiserver: 46.4 MiB against 39.1 for a bare process). So a connection is Deno's own: TCP with
// TCP_NODELAY, then Deno.startTls, as in a pod (a service-account token). Deno.startTls cannot present a
// client certificate and Deno.connectTls leaves Nagle's algorithm on, so a kubeconfig user with a client
// certificate connects through node:tls instead, loaded only then (node_tls_socket.ts).
// The price of Deno's socket: a read returns one TLS record, and Go's server sends each 4 KiB DATA frame as
// a record of its own, so a LIST of 10,000 pods takes ~2,300 reads where node:tls takes a few hundred:
// 200-370 ms against 170-180 (`deno task bench watch_loop --token` against without). Reading on into the
// same buffer before handing over did not change that; the reads themselves are the cost.

/** The few Deno.Conn methods a connection uses (Deno.TlsConn has them; node_tls_socket.ts adapts node:tls). */
export interface TlsSocket {
  read(buf: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  closeWrite(): Promise<void>;
  close(): void;
  ref(): void;
  unref(): void;
}

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
): Promise<{ conn: TlsSocket; protocol: string | null }> {
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
): Promise<{ conn: TlsSocket; protocol: string | null }> {
  if (target.cert && target.key) {
    const { connectNodeTls } = await import("./node_tls_socket.ts");
    const conn = await connectNodeTls(target, alpn, signal);
    return { conn, protocol: conn.alpnProtocol };
  }
  const tcp = await Deno.connect({ hostname: target.hostname, port: target.port, signal });
  tcp.setNoDelay(true);
  const conn = await Deno.startTls(tcp, {
    hostname: target.hostname,
    alpnProtocols: alpn,
    caCerts: target.caCerts,
  });
  try {
    return { conn, protocol: (await conn.handshake()).alpnProtocol };
  } catch (e) {
    closeQuietly(conn);
    throw e;
  }
}

/** rustls names an untrusted certificate's issuer "UnknownIssuer"; say what that means here. */
function explained(e: unknown): unknown {
  if (!(e instanceof Error) || !/\bUnknownIssuer\b|unable to verify/.test(e.message)) return e;
  return new Error(
    `the server's certificate is not signed by a trusted certificate authority (${e.message})`,
    {
      cause: e,
    },
  );
}

export function closeQuietly(conn: TlsSocket): void {
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
  readonly #conn: TlsSocket;
  readonly #onError: (e: unknown) => void;
  #queue: Uint8Array[] = [];
  #unsent = 0;
  #pumping: Promise<void> | undefined;
  #failed = false;

  constructor(conn: TlsSocket, onError: (e: unknown) => void) {
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
