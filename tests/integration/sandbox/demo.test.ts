// `deno task demo` runs in CI through this test: its walkthrough must show MIC assigning, a token obtained
// through NMI by an unmodified SDK, the ARM call made with it, the unbound pod refused, and the clean-up.

import assert from "node:assert/strict";
import { netnsUnavailable } from "../../../scripts/sandbox/netns.ts";

const root = new URL("../../../", import.meta.url).pathname;

Deno.test("demo: start to finish, the SDK's token comes through NMI; the unbound pod gets nothing; cleans up", async () => {
  const before = new TextDecoder().decode(
    (await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output()).stdout,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}scripts/demo.ts`],
    cwd: root,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /MIC leading, NMI ready on node/);
  assert.match(text, /MIC: AzureAssignedIdentity app-default-demo Created -> Assigned after/);
  const clientId = /identity default\/demo: client id (\S+)/.exec(text)![1];
  assert.match(text, new RegExp(`token claims: appid=${clientId} aud=https://management\\.azure\\.com`));
  assert.match(text, /no AzureIdentityBinding selects pod default\/nobody"\} \(HTTP 400\)/);
  assert.doesNotMatch(text, /eyJ[A-Za-z0-9_-]{20,}/, "a token was printed");
  assert.match(text, /demo done in [\d.]+ s/);
  if (!(await netnsUnavailable())) {
    assert.match(text, /iptables in the node's namespace sent it to NMI/);
    assert.match(text, /ARM \(emulated\) accepted the pod's token: VMs in MC_sandbox: jumpbox/);
    const demoNs = /network namespace (aadsbx-\w+)-node/.exec(text)![1];
    const after = new TextDecoder().decode(
      (await new Deno.Command("ip", { args: ["netns", "list"], stdout: "piped" }).output()).stdout,
    );
    assert.ok(!after.includes(demoNs), `namespaces left: ${after}`);
    assert.equal(before.includes(demoNs), false);
  }
});

Deno.test("demo: the no-root variant (loopback source addresses) gets the token through NMI too", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}scripts/demo.ts`],
    cwd: root,
    env: { AAD_DEMO_LOOPBACK: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = new TextDecoder().decode(out.stdout) + new TextDecoder().decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.match(text, /no root: NMI at 127\.0\.0\.1:\d+/);
  const clientId = /identity default\/demo: client id (\S+)/.exec(text)![1];
  assert.match(text, new RegExp(`NMI served identity demo in[^]*token claims: appid=${clientId}`));
  assert.match(text, /no AzureIdentityBinding selects pod default\/nobody"\} \(HTTP 400\)/);
  assert.match(text, /demo done in/);
});
