// lib/kube's own HTTP/2 connection against the real apiserver: answers larger than the stream window and
// request bodies larger than the server's upload windows, all on one connection; the apiserver's TLS
// identity checked as fetch checks it (CA and the name or address in its certificate).

import assert from "node:assert/strict";
import { sharedCluster } from "../../support/cluster.ts";
import { loadKubeConnection } from "../../../lib/kube/config.ts";
import { Http2Transport } from "../../../lib/kube/http2/transport.ts";
import { KubeClient, PROTOBUF_ACCEPT, Resources } from "../../../lib/kube/rest.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";
import { ensureCa } from "../../../scripts/sandbox/pki.ts";

type ConfigMap = KubeObject & { data?: Record<string, string> };

Deno.test("http2: 1 MiB writes and a 6 MiB LIST pass the flow-control windows, on one connection", async () => {
  const cluster = await sharedCluster();
  const conn = await loadKubeConnection({ kubeconfigPath: cluster.kubeconfigPath });
  const client = new KubeClient(conn, { userAgent: "kube-http2-test" });
  try {
    assert.ok(conn.http2, "the kubeconfig's server is reached over lib/kube's HTTP/2");
    const namespace = await cluster.namespace("http2-big");
    // Each body is 1 MiB: past the apiserver's upload window, so the client must wait for its credit.
    const big = (i: number) => String.fromCharCode(97 + i).repeat(1 << 20);
    await Promise.all(Array.from({ length: 6 }, (_, i) =>
      client.create<ConfigMap>(Resources.configMaps, {
        metadata: { name: `big-${i}`, namespace },
        data: { v: big(i) },
      })));
    // 6 MiB in one answer: more than the 4 MiB stream window, so it is credited back while it is read.
    const list = await client.list<ConfigMap>(Resources.configMaps, { namespace });
    const bigOnes = list.items.filter((cm) => cm.metadata.name!.startsWith("big-"));
    assert.equal(bigOnes.length, 6);
    for (const cm of bigOnes) assert.equal(cm.data?.v, big(Number(cm.metadata.name!.slice(4))));
    // The same in protobuf, read as a stream.
    const res = await client.fetch("GET", `/api/v1/namespaces/${namespace}/configmaps`, {
      accept: PROTOBUF_ACCEPT,
    });
    assert.ok((await res.arrayBuffer()).byteLength > 6 << 20);
    // Asked for gzip (the apiserver compresses answers over 128 KiB), the client inflates it itself.
    const gzipped = await new KubeClient(conn, { compression: true }).list<ConfigMap>(Resources.configMaps, {
      namespace,
    });
    assert.deepEqual(
      gzipped.items.map((cm) => cm.data?.v?.length),
      list.items.map((cm) => cm.data?.v?.length),
    );
    assert.equal(gzipped.items.find((cm) => cm.metadata.name === "big-3")?.data?.v, big(3));
    assert.ok(conn.http2 instanceof Http2Transport);
    assert.equal(conn.http2.connections, 1);
  } finally {
    conn.close();
  }
});

Deno.test("http2: the apiserver's certificate is checked: wrong CA and unnamed address refused", async () => {
  const cluster = await sharedCluster();
  const conn = await loadKubeConnection({ kubeconfigPath: cluster.kubeconfigPath });
  const kubeconfig = await Deno.readTextFile(cluster.kubeconfigPath);
  const pem = (k: string) => atob(new RegExp(`${k}: (\\S+)`).exec(kubeconfig)![1]);
  const tls = {
    caCerts: [pem("certificate-authority-data")],
    cert: pem("client-certificate-data"),
    key: pem("client-key-data"),
  };
  const noEnv = () => undefined;
  const server = new URL(conn.server);
  // 127.0.0.2 reaches the same apiserver but is not in its serving certificate.
  const forward = Deno.listen({ hostname: "127.0.0.2", port: 0 });
  const piping = (async () => {
    for await (const c of forward) {
      const up = await Deno.connect({ hostname: server.hostname, port: Number(server.port) });
      c.readable.pipeTo(up.writable).catch(() => {});
      up.readable.pipeTo(c.writable).catch(() => {});
    }
  })().catch(() => {});
  const otherCa = await ensureCa(await Deno.makeTempDir({ prefix: "other-ca-" }), "some other CA");
  const cases: [string, Http2Transport, string, RegExp | number][] = [
    ["the cluster's CA", new Http2Transport(tls, noEnv), conn.server, 200],
    ["a name in the certificate", new Http2Transport(tls, noEnv), `https://localhost:${server.port}`, 200],
    [
      "another CA",
      new Http2Transport({ ...tls, caCerts: [await Deno.readTextFile(otherCa.certPath)] }, noEnv),
      conn.server,
      /not signed by a trusted certificate authority \(unable to verify the first certificate\)/,
    ],
    [
      "an address not in the certificate",
      new Http2Transport(tls, noEnv),
      `https://127.0.0.2:${forward.addr.port}`,
      /127\.0\.0\.2 is not in the cert/,
    ],
    // Without a client certificate (a pod's token), the connection is Deno's own TLS: the same checks.
    [
      "another CA, no client certificate",
      new Http2Transport({ caCerts: [await Deno.readTextFile(otherCa.certPath)] }, noEnv),
      conn.server,
      /not signed by a trusted certificate authority \(invalid peer certificate: UnknownIssuer\)/,
    ],
    [
      "an address not in the certificate, no client certificate",
      new Http2Transport({ caCerts: tls.caCerts }, noEnv),
      `https://127.0.0.2:${forward.addr.port}`,
      /certificate not valid for name "127\.0\.0\.2"/,
    ],
    [
      "the cluster's CA, no client certificate",
      new Http2Transport({ caCerts: tls.caCerts }, noEnv),
      conn.server,
      200,
    ],
  ];
  try {
    for (const [what, t, url, expected] of cases) {
      try {
        const answer = t.request(url, "GET", "/version", new Headers());
        if (typeof expected === "number") assert.equal((await answer)?.status, expected, what);
        else await assert.rejects(answer, expected, what);
      } finally {
        t.close();
      }
    }
  } finally {
    forward.close();
    await piping;
    conn.close();
  }
});
