// A plain TCP forwarder: `deno run --allow-net tcp_forward.ts LISTEN_IP:PORT TARGET_IP:PORT`. The sandbox
// uses it to make the root namespace's loopback services (apiserver, Azure emulator) appear inside a node
// network namespace at the same addresses, so TLS names and kubeconfigs need no change.

function parse(addr: string | undefined): { hostname: string; port: number } {
  const m = /^(.+):(\d+)$/.exec(addr ?? "");
  if (!m) {
    console.error("usage: tcp_forward.ts LISTEN_IP:PORT TARGET_IP:PORT");
    Deno.exit(2);
  }
  return { hostname: m[1], port: Number(m[2]) };
}

async function pipe(from: Deno.Conn, to: Deno.Conn): Promise<void> {
  try {
    await from.readable.pipeTo(to.writable, { preventClose: true });
  } catch { /* peer reset */ }
  try {
    await to.closeWrite();
  } catch { /* already closed */ }
}

if (import.meta.main) {
  const listen = parse(Deno.args[0]);
  const target = parse(Deno.args[1]);
  const listener = Deno.listen({ ...listen, transport: "tcp" });
  for await (const conn of listener) {
    (async () => {
      let upstream: Deno.Conn;
      try {
        upstream = await Deno.connect({ ...target, transport: "tcp" });
      } catch {
        conn.close();
        return;
      }
      await Promise.all([pipe(conn, upstream), pipe(upstream, conn)]);
      for (const c of [conn, upstream]) {
        try {
          c.close();
        } catch { /* closed */ }
      }
    })();
  }
}
