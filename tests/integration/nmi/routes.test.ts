// Every route and status code of NMI's HTTP surface, against NMI as a real process (shipped permissions),
// the real apiserver and the emulated node IMDS; plus the probe shapes unmodified SDKs send.

import assert from "node:assert/strict";
import { MD, msiSpec, request, spawnNmi, startHarness, TOKEN_PATH, tokenPath } from "./harness.ts";

Deno.test("NMI routes and status codes", async (t) => {
  const h = await startHarness({ attached: ["id-a"], detached: ["id-b"] });
  try {
    const idA = await h.createIdentity("id-a", msiSpec(h.ids["id-a"]));
    const bA = await h.createBinding("b-a", "id-a", "sel-a");
    const podA = await h.createPod("pod-a", { aadpodidbinding: "sel-a" });
    await h.assign(podA, idA, bA, "Assigned");
    const unbound = await h.createPod("pod-unbound", {});

    await t.step(
      "SDK probes without Metadata get an instant 400 JSON (JS/Go: no query; Python: full query)",
      async () => {
        for (
          const path of [
            TOKEN_PATH,
            tokenPath("https://management.azure.com"),
            "/METADATA/identity/oauth2/token",
          ]
        ) {
          const t0 = performance.now();
          const r = await h.get(podA.ip, path, {});
          assert.ok(performance.now() - t0 < 500, "answered in well under the SDKs' 1 s probe budget");
          assert.equal(r.status, 400);
          assert.match(String(r.headers["content-type"]), /^application\/json/);
          assert.deepEqual(r.json, {
            error: "invalid_request",
            error_description: "Required metadata header not specified",
          });
        }
        // Nothing was asked of IMDS for a probe.
        assert.equal(h.emu.requests.count({ service: "imds" }), 0);
      },
    );

    await t.step(
      "200: IMDS JSON, every field a string, client_id echoed, token for the bound identity",
      async () => {
        const r = await h.get(podA.ip, tokenPath());
        assert.equal(r.status, 200, r.text);
        for (const [k, v] of Object.entries(r.json)) assert.equal(typeof v, "string", k);
        for (const k of ["expires_in", "expires_on", "not_before", "ext_expires_in"]) {
          assert.match(r.json[k], /^\d+$/, k);
        }
        assert.equal(r.json.client_id, h.ids["id-a"].clientId);
        assert.equal(r.json.resource, "https://vault.azure.net");
        assert.equal(r.json.token_type, "Bearer");
        const claims = await h.emu.verifyToken(r.json.access_token);
        assert.equal(claims.appid, h.ids["id-a"].clientId);
        assert.equal(claims.aud, "https://vault.azure.net");
      },
    );

    await t.step("case-insensitive token path and trailing slash are the token route", async () => {
      const r = await h.get(
        podA.ip,
        `/Metadata/Identity/OAuth2/Token/?resource=https%3A%2F%2Fvault.azure.net`,
      );
      assert.equal(r.status, 200, r.text);
    });

    await t.step(
      "400: missing resource; pod without binding; mangled token paths never proxied",
      async () => {
        const noRes = await h.get(podA.ip, `${TOKEN_PATH}?api-version=2018-02-01`);
        assert.equal(noRes.status, 400);
        assert.match(noRes.json.error_description, /resource/);
        const noBinding = await h.get(unbound.ip, tokenPath());
        assert.equal(noBinding.status, 400);
        assert.match(noBinding.json.error_description, /no AzureIdentityBinding/);
        const before = h.emu.requests.count({ service: "imds" });
        for (
          const p of [
            "/metadata/identity\\oauth2\\token",
            "/metadata/identity/oauth2/token/x",
            "/metadata/identityXoauth2Ytoken",
          ]
        ) {
          const r = await h.get(podA.ip, `${p}?resource=x`);
          assert.equal(r.status, 400, p);
          assert.equal(r.json.error, "invalid_request");
        }
        assert.equal(h.emu.requests.count({ service: "imds" }), before);
      },
    );

    await t.step("405: token route only answers GET", async () => {
      const r = await h.get(podA.ip, tokenPath(), MD, "POST");
      assert.equal(r.status, 405);
      assert.equal(r.headers["allow"], "GET");
    });

    await t.step("403: another pod's identity; 404: unknown source IP", async () => {
      const r = await h.get(podA.ip, tokenPath(undefined, { client_id: h.ids["id-b"].clientId }));
      assert.equal(r.status, 403);
      const stranger = await h.get("127.0.0.250", tokenPath());
      assert.equal(stranger.status, 404);
      assert.equal(stranger.json.error, "not_found");
    });

    await t.step("/metadata/instance proxied without X-Forwarded-For; other paths proxied", async () => {
      const r = await h.get(podA.ip, "/metadata/instance?api-version=2021-02-01", {
        ...MD,
        "X-Forwarded-For": "1.2.3.4",
      });
      assert.equal(r.status, 200, r.text);
      assert.equal(r.json.compute.vmScaleSetName, "nodes");
      const versions = await h.get(podA.ip, "/metadata/versions", MD);
      assert.equal(versions.status, 200);
      const unknown = await h.get(podA.ip, "/metadata/nothing-here", MD);
      assert.equal(unknown.status, 404);
      const bad = await h.get(podA.ip, "/metadata/instance", MD, "DELETE");
      assert.equal(bad.status, 405);
    });

    await t.step(
      "metadata header on proxied paths: no `Metadata: true`, no proxying (400, as the original)",
      async () => {
        const reachedImds = h.emu.requests.count({ service: "imds" });
        for (const path of ["/metadata/instance?api-version=2021-02-01", "/metadata/versions"]) {
          for (const headers of [{}, { Metadata: "false" }] as Record<string, string>[]) {
            const r = await h.get(podA.ip, path, headers);
            assert.equal(r.status, 400, `${path} ${JSON.stringify(headers)}: ${r.text}`);
            assert.equal(r.json.error_description, "Required metadata header not specified");
          }
        }
        assert.equal(h.emu.requests.count({ service: "imds" }), reachedImds, "nothing was proxied to IMDS");
      },
    );

    await t.step("/host/token: only from 127.0.0.1, podns/podname headers required", async () => {
      const path = `/host/token?resource=${encodeURIComponent("https://vault.azure.net")}`;
      const ok = await request(h.nmi.port, "127.0.0.1", path, { headers: { podns: h.ns, podname: "pod-a" } });
      assert.equal(ok.status, 200, ok.text);
      assert.equal(ok.json.clientid, h.ids["id-a"].clientId);
      assert.equal(ok.json.token.client_id, h.ids["id-a"].clientId);
      const missing = await request(h.nmi.port, "127.0.0.1", path, {});
      assert.equal(missing.status, 400);
      const fromPod = await request(h.nmi.port, podA.ip, path, {
        headers: { podns: h.ns, podname: "pod-a" },
      });
      assert.equal(fromPod.status, 403);
      const nobody = await request(h.nmi.port, "127.0.0.1", path, {
        headers: { podns: h.ns, podname: "nope" },
      });
      assert.equal(nobody.status, 404);
    });

    await t.step("/healthz, /readyz, /metrics with bounded labels", async () => {
      for (const p of ["/healthz", "/readyz"]) {
        const r = await fetch(`http://127.0.0.1:${h.nmi.probePort}${p}`);
        assert.equal(r.status, 200);
        await r.body?.cancel();
      }
      const m = await (await fetch(`http://127.0.0.1:${h.nmi.probePort}/metrics`)).text();
      // The original's labels and values (namespace and resource kept, with bounded values).
      assert.match(
        m,
        new RegExp(
          `aadpodidentity_nmi_operations_duration_seconds_count\\{operation_type="/metadata/identity/oauth2/token",` +
            `status_code="200",namespace="${h.ns}",resource="https://vault.azure.net"\\}`,
        ),
      );
      assert.doesNotMatch(m, /pod-a/);
    });
  } finally {
    await h.close();
  }
});

Deno.test("--block-instance-metadata answers 403 before the Metadata check", async () => {
  const h = await startHarness({ nmiArgs: ["--block-instance-metadata"] });
  try {
    const pod = await h.createPod("p", {});
    const r = await h.get(pod.ip, "/metadata/instance?api-version=2021-02-01", {});
    assert.equal(r.status, 403);
    assert.equal(r.json.error_description, "Request blocked by AAD Pod Identity NMI");
  } finally {
    await h.close();
  }
});

Deno.test("before its caches sync: /readyz 503 with the reason, probes still 400 at once, tokens 503", async () => {
  const h = await startHarness({ startNmi: false });
  try {
    // The same cluster credentials, pointed at a port where no apiserver answers.
    const kubeconfig = (await Deno.readTextFile(h.cluster.kubeconfigPath)).replace(
      /server: https:\/\/[^\s]+/,
      "server: https://127.0.0.1:9",
    );
    const path = await Deno.makeTempFile({ suffix: ".kubeconfig" });
    await Deno.writeTextFile(path, kubeconfig);
    const args = h.nmiArgs(["--identity-wait-deadline", "300ms"]);
    args[args.indexOf("--kubeconfig") + 1] = path;
    const nmi = await spawnNmi(args);
    try {
      const ready = await fetch(`http://127.0.0.1:${nmi.probePort}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), /not ready: caches not synced/);
      const health = await fetch(`http://127.0.0.1:${nmi.probePort}/healthz`);
      assert.equal(health.status, 200);
      await health.body?.cancel();
      const probe = await request(nmi.port, "127.0.0.9", TOKEN_PATH, {});
      assert.equal(probe.status, 400);
      const token = await request(nmi.port, "127.0.0.9", tokenPath(), { headers: MD });
      assert.equal(token.status, 503);
      assert.equal(token.headers["retry-after"], "1");
    } finally {
      await nmi.stop();
      await Deno.remove(path);
    }
  } finally {
    await h.close();
  }
});
