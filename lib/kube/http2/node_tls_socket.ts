// The TLS socket for a kubeconfig user with a client certificate: node:tls, with TCP_NODELAY. Deno.startTls
// cannot present a certificate, and Deno.connectTls leaves Nagle's algorithm on: a small write after a small
// write then waits for the server's delayed ACK, which made a paged LIST of 10,000 pods take 370-390 ms
// instead of 175 in half the runs (each page's request waits behind the WINDOW_UPDATEs before it). Imported
// only for such a user: node:tls starts Deno's Node compatibility layer (about 7 MiB of RSS), and a pod's
// service-account token never needs it.

import tls from "node:tls";
import type { TlsSocket, TlsTarget } from "./tls_socket.ts";

/** What is received and not yet read past this pauses the socket (TCP's window then holds the rest). */
const PAUSE_AT = 1 << 20;

/** Connects; resolves once the handshake is done. */
export function connectNodeTls(
  target: TlsTarget,
  alpn: string[],
  signal: AbortSignal,
): Promise<TlsSocket & { readonly alpnProtocol: string | null }> {
  const sock = tls.connect({
    host: target.hostname,
    port: target.port,
    // SNI takes a name only: an IP address is verified against the certificate's IP entries instead.
    servername: /^[\d.]+$|:/.test(target.hostname) ? undefined : target.hostname,
    ALPNProtocols: alpn,
    ...(target.caCerts ? { ca: target.caCerts } : {}),
    cert: target.cert,
    key: target.key,
  });
  sock.setNoDelay(true);
  signal.addEventListener("abort", () => sock.destroy(), { once: true });
  return new Promise((resolve, reject) => {
    sock.once("secureConnect", () => {
      sock.removeListener("error", reject);
      resolve(new NodeTlsSocket(sock));
    });
    sock.once("error", (e) => {
      sock.destroy();
      reject(e);
    });
  });
}

/** A node:tls socket as the few Deno.Conn methods a connection uses; a read takes every chunk already here. */
class NodeTlsSocket implements TlsSocket {
  readonly #sock: tls.TLSSocket;
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: unknown;
  #wake: (() => void) | undefined;

  constructor(sock: tls.TLSSocket) {
    this.#sock = sock;
    const wake = () => this.#wake?.();
    sock.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued > PAUSE_AT) sock.pause();
      wake();
    });
    sock.on("end", () => (this.#ended = true, wake()));
    sock.on("close", () => (this.#ended = true, wake()));
    sock.on("error", (e: Error) => (this.#error = e, wake()));
  }

  get alpnProtocol(): string | null {
    return this.#sock.alpnProtocol || null;
  }

  async read(buf: Uint8Array): Promise<number | null> {
    while (this.#queued === 0) {
      if (this.#error !== undefined) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((resolve) => this.#wake = resolve);
      this.#wake = undefined;
    }
    let n = 0;
    while (this.#chunks.length && n < buf.length) {
      const chunk = this.#chunks[0];
      const take = Math.min(chunk.length, buf.length - n);
      buf.set(chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#queued -= n;
    if (this.#sock.isPaused() && this.#queued < PAUSE_AT / 2) this.#sock.resume();
    return n;
  }

  write(bytes: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#sock.write(bytes, (e) => e ? reject(e) : resolve(bytes.length));
    });
  }

  closeWrite(): Promise<void> {
    this.#sock.end();
    return Promise.resolve();
  }

  close(): void {
    this.#sock.destroy();
  }

  ref(): void {
    this.#sock.ref();
  }

  unref(): void {
    this.#sock.unref();
  }
}
