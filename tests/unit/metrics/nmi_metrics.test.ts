// NMI's per-request metric calls: what each adds to /metrics, and that the series bound on first use show
// nothing before it (the contract test of the original's metrics lists exactly the operation types used).

import assert from "node:assert/strict";
import { NmiMetrics } from "../../../nmi/metrics.ts";

const TOKEN = "/metadata/identity/oauth2/token";

Deno.test("NMI metrics: a request is one series of operation, status, bounded namespace and resource", () => {
  const m = new NmiMetrics();
  const req = (namespace: string, resource: string, status = 200) =>
    m.observeRequest({ kind: "token", rawPath: TOKEN, status, namespace, resource }, 0.002);
  req("ns1", "https://vault.azure.net");
  req("ns1", "https://vault.azure.net");
  req("", "", 400);
  req("ns1", "x".repeat(300));
  m.observeRequest({
    kind: "instance",
    rawPath: "/Metadata//Instance/",
    status: 200,
    namespace: "ns1",
    resource: "",
  }, 1);
  m.observeRequest(
    { kind: "proxy", rawPath: "/secret/pod-a", status: 404, namespace: "ns1", resource: "" },
    1,
  );
  const text = m.registry.metrics();
  const count = (labels: string) =>
    new RegExp(`^aadpodidentity_nmi_operations_duration_seconds_count\\{${labels}\\} (\\d+)$`, "m").exec(text)
      ?.[1];
  assert.equal(
    count(`operation_type="${TOKEN}",status_code="200",namespace="ns1",resource="https://vault.azure.net"`),
    "2",
  );
  assert.equal(count(`operation_type="${TOKEN}",status_code="400",namespace="",resource=""`), "1");
  assert.equal(count(`operation_type="${TOKEN}",status_code="200",namespace="ns1",resource="other"`), "1");
  assert.equal(
    count(`operation_type="/metadata/instance",status_code="200",namespace="ns1",resource=""`),
    "1",
  );
  assert.equal(count(`operation_type="other",status_code="404",namespace="ns1",resource=""`), "1");
  assert.doesNotMatch(text, /pod-a/);
});

Deno.test('NMI metrics: namespaces past the limit are "other"', () => {
  const m = new NmiMetrics();
  for (let i = 0; i < 501; i++) {
    m.observeRequest(
      { kind: "token", rawPath: TOKEN, status: 200, namespace: `ns${i}`, resource: "r" },
      0.001,
    );
  }
  const text = m.registry.metrics();
  assert.match(text, /_count\{[^}]*namespace="ns499"[^}]*\} 1$/m);
  assert.match(text, /_count\{[^}]*namespace="other"[^}]*\} 1$/m);
  assert.doesNotMatch(text, /namespace="ns500"/);
});

Deno.test("NMI metrics: upstream calls and cache results, each series shown only once used", () => {
  const m = new NmiMetrics();
  const before = m.registry.metrics();
  assert.doesNotMatch(before, /operation_type="adal_token|result="/);
  m.observeUpstream("imds_user_assigned", true, 0.05);
  m.observeUpstream("imds_user_assigned", true, 0.05);
  m.observeUpstream("aad", false, 1);
  m.countCacheResult("cache");
  m.countCacheResult("cache");
  m.countCacheResult("upstream");
  const text = m.registry.metrics();
  assert.match(
    text,
    /^aadpodidentity_imds_operations_duration_seconds_count\{operation_type="adal_token_msi_userassignedid"\} 2$/m,
  );
  assert.match(text, /^aadpodidentity_imds_operations_errors_count\{operation_type="adal_token"\} 1$/m);
  assert.doesNotMatch(text, /operation_type="adal_token_msi"|operation_type="service_account_token"/);
  assert.match(text, /^aadpodidentity_nmi_token_cache_total\{result="cache"\} 2$/m);
  assert.match(text, /^aadpodidentity_nmi_token_cache_total\{result="upstream"\} 1$/m);
  assert.doesNotMatch(text, /result="shared"/);
});
