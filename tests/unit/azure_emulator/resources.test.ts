import assert from "node:assert/strict";
import {
  resourceNotFound,
  ResourceRegistry,
  WELL_KNOWN_RESOURCES,
} from "../../../scripts/sandbox/azure/resources.ts";

Deno.test("the resource registry matches app ID URIs case-insensitively, with or without a trailing slash", () => {
  const r = new ResourceRegistry(WELL_KNOWN_RESOURCES, true, (x) => x === "app-id");
  for (const ok of ["https://vault.azure.net", "https://Vault.Azure.net/", "https://management.azure.com/"]) {
    assert.ok(r.has(ok), ok);
  }
  assert.ok(r.has("app-id") && r.has("api://app-id"), "registered applications by client id");
  assert.ok(!r.has("https://vault.azure.net.evil"));
  assert.ok(!r.has("api://other"));
  r.register("https://custom.example/");
  assert.ok(r.has("https://custom.example"));
  assert.throws(() => r.register(" "), TypeError);
  assert.ok(new ResourceRegistry([], false).has("anything"), "strict: false accepts everything");
});

Deno.test("an unknown resource is refused with AADSTS500011 invalid_resource naming resource and tenant", () => {
  const e = resourceNotFound("https://x", "t1");
  assert.equal(e.status, 400);
  assert.equal(e.error, "invalid_resource");
  assert.equal(e.code, 500011);
  assert.match(
    e.description,
    /^The resource principal named https:\/\/x was not found in the tenant named t1\./,
  );
});
