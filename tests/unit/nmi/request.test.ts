import assert from "node:assert/strict";
import {
  allowedMethods,
  classifyPath,
  hasMetadataHeader,
  isHostCaller,
  MAX_QUERY_LENGTH,
  normalizeIp,
  parseQuery,
  parseTokenQuery,
  rawPathOf,
  rawQueryOf,
} from "../../../nmi/request.ts";

Deno.test("token paths match case-insensitively, with or without trailing or doubled slashes", () => {
  for (
    const p of [
      "/metadata/identity/oauth2/token",
      "/METADATA/identity/oauth2/token",
      "/Metadata/Identity/OAuth2/Token/",
      "//metadata//identity/oauth2/token",
      "/metadata/identity/oauth2/%74oken",
    ]
  ) assert.equal(classifyPath(p), "token", p);
  assert.equal(classifyPath("/host/token"), "host_token");
  assert.equal(classifyPath("/Host/Token/"), "host_token");
});

Deno.test("mangled token paths are refused, never proxied", () => {
  for (
    const p of [
      "/metadata/identity\\oauth2\\token",
      "/metadata/identity/oauth2/token/extra",
      "/metadata/identityXoauth2Ytoken",
      "/metadata/identity%2Foauth2%2Ftoken2",
      "/metadata/identity/oauth2/authorize",
      "/foo/identity/oauth2/token",
      "/metadata/%ff%fe",
    ]
  ) assert.equal(classifyPath(p), "mangled_token", p);
  assert.deepEqual(allowedMethods("mangled_token"), []);
});

Deno.test("instance metadata and everything else", () => {
  assert.equal(classifyPath("/metadata/instance"), "instance");
  assert.equal(classifyPath("/Metadata/Instance/compute/vmId"), "instance");
  assert.equal(classifyPath("/metadata/instancefoo"), "proxy");
  assert.equal(classifyPath("/metadata/identity/info"), "proxy");
  assert.equal(classifyPath("/metadata/versions"), "proxy");
  assert.equal(classifyPath("/"), "proxy");
  assert.deepEqual(allowedMethods("token"), ["GET"]);
});

Deno.test('Metadata header: exactly "true"', () => {
  assert.equal(hasMetadataHeader("true"), true);
  assert.equal(hasMetadataHeader("True"), false);
  assert.equal(hasMetadataHeader(null), false);
  assert.equal(hasMetadataHeader("yes"), false);
  assert.equal(hasMetadataHeader("true,true"), false);
});

Deno.test("token query: resource required, one selector, mi_res_id is msi_res_id", () => {
  const ok = parseTokenQuery("api-version=2018-02-01&resource=https%3A%2F%2Fvault.azure.net&client_id=abc");
  assert.deepEqual(ok, {
    ok: true,
    value: { resource: "https://vault.azure.net", clientId: "abc", apiVersion: "2018-02-01" },
  });
  const mi = parseTokenQuery("resource=r&mi_res_id=%2Fsubscriptions%2Fx");
  assert.ok(mi.ok && mi.value.resourceId === "/subscriptions/x");
  const oid = parseTokenQuery("resource=r&object_id=o");
  assert.ok(oid.ok && oid.value.objectId === "o");
  const none = parseTokenQuery("api-version=2018-02-01");
  assert.ok(!none.ok && none.error.status === 400 && /resource/.test(none.error.description));
  const two = parseTokenQuery("resource=r&client_id=a&msi_res_id=b");
  assert.ok(!two.ok && two.error.status === 400);
});

Deno.test("query: duplicates, invalid UTF-8, control characters and huge input are clear 4xx", () => {
  const dup = parseQuery("resource=a&resource=b");
  assert.ok(!dup.ok && dup.error.status === 400 && /more than once/.test(dup.error.description));
  const dupSel = parseTokenQuery("resource=a&client_id=x&client_id=y");
  assert.ok(!dupSel.ok && dupSel.error.status === 400);
  const utf = parseQuery("resource=%ff%fe");
  assert.ok(!utf.ok && utf.error.status === 400 && /UTF-8/.test(utf.error.description));
  const pct = parseQuery("resource=%zz");
  assert.ok(!pct.ok && pct.error.status === 400);
  const ctl = parseQuery("resource=a%0d%0aX-Injected:1");
  assert.ok(!ctl.ok && ctl.error.status === 400);
  const huge = parseQuery("resource=" + "a".repeat(MAX_QUERY_LENGTH));
  assert.ok(!huge.ok && huge.error.status === 414);
  const plus = parseQuery("resource=a+b");
  assert.ok(plus.ok && plus.value.get("resource") === "a b");
});

Deno.test("raw path and query come from the request URL without normalisation", () => {
  assert.equal(rawPathOf("http://h:1/a/b?c=d"), "/a/b");
  assert.equal(rawQueryOf("http://h:1/a/b?c=d&e"), "c=d&e");
  assert.equal(rawQueryOf("http://h:1/a"), "");
});

Deno.test("caller IPs: IPv4-mapped IPv6 is IPv4; /host/token only from 127.0.0.1 or ::1", () => {
  assert.equal(normalizeIp("::ffff:10.1.2.3"), "10.1.2.3");
  assert.equal(normalizeIp("[FD00::1]"), "fd00::1");
  assert.equal(isHostCaller("127.0.0.1"), true);
  assert.equal(isHostCaller("::1"), true);
  assert.equal(isHostCaller("127.0.3.4"), false);
  assert.equal(isHostCaller("10.0.0.1"), false);
});

Deno.test("resource and selectors must be printable ASCII", () => {
  const r = parseTokenQuery("resource=%C3%BF");
  assert.ok(!r.ok && r.error.status === 400);
  const sp = parseTokenQuery("resource=a%20b");
  assert.ok(!sp.ok);
  const cid = parseTokenQuery("resource=a&client_id=%E2%80%8B");
  assert.ok(!cid.ok);
});
