import assert from "node:assert/strict";
import { ChangeFeed, waitFor } from "../../../nmi/change_feed.ts";
import { identityNotFoundDelay, spCredential, TokenError } from "../../../nmi/token_service.ts";
import { identity } from "./fixtures.ts";

Deno.test("waitFor wakes on a change (no polling), gives up at the deadline, and on abort", async () => {
  const feed = new ChangeFeed();
  let state: string | undefined;
  const t0 = performance.now();
  const pending = waitFor(() => state, feed, performance.now() + 5000);
  setTimeout(() => {
    state = "assigned";
    feed.notify();
  }, 50);
  assert.equal(await pending, "assigned");
  assert.ok(performance.now() - t0 < 1000);
  assert.equal(feed.waiting, 0);
  assert.equal(await waitFor(() => undefined, feed, performance.now() + 50), undefined);
  const ac = new AbortController();
  const aborted = waitFor(() => undefined, feed, performance.now() + 60_000, ac.signal);
  ac.abort();
  assert.equal(await aborted, undefined);
  assert.equal(feed.waiting, 0);
  const v = feed.version;
  feed.notify();
  assert.equal(feed.version, v + 1);
});

Deno.test("Identity-not-found retries back off 100 ms doubling to 1 s", () => {
  assert.deepEqual([0, 1, 2, 3, 4, 5].map(identityNotFoundDelay), [100, 200, 400, 800, 1000, 1000]);
});

Deno.test("service-principal secrets: clientSecret key or the only key; certificate must be PEM", async () => {
  const sp = identity("ns", "sp", {
    type: 1,
    resourceID: "",
    clientPassword: { name: "s", namespace: "ns" },
  });
  assert.deepEqual(await spCredential(sp, { clientSecret: btoa("s3cret") }), {
    kind: "secret",
    secret: "s3cret",
  });
  assert.deepEqual(await spCredential(sp, { whatever: btoa("x") }), { kind: "secret", secret: "x" });
  // Several keys, none named clientSecret: read as the original did (it took one value), not refused; keys
  // naming another field are skipped, then the first by name.
  assert.deepEqual(await spCredential(sp, { clientID: btoa("id"), secret: btoa("s"), tenantID: btoa("t") }), {
    kind: "secret",
    secret: "s",
  });
  assert.deepEqual(await spCredential(sp, { b: btoa("2"), a: btoa("1") }), { kind: "secret", secret: "1" });
  await assert.rejects(() => spCredential(sp, {}), TokenError);
  const cert = identity("ns", "c", {
    type: 2,
    resourceID: "",
    clientPassword: { name: "s", namespace: "ns" },
  });
  await assert.rejects(() => spCredential(cert, {}), /no 'certificate'/);
  await assert.rejects(
    () => spCredential(cert, { certificate: btoa("\x30\x82binary-pfx") }),
    (e) => e instanceof TokenError && e.refusal.kind === "forbidden" && /PKCS#12/.test(e.refusal.message),
  );
  try {
    await spCredential(cert, {
      certificate: btoa("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
    });
    assert.fail("accepted a PEM without a key");
  } catch (e) {
    assert.ok(e instanceof TokenError && e.refusal.kind === "forbidden");
    assert.doesNotMatch(e.refusal.message, /AAAA/);
  }
});
