// The emulator CLI's --admin endpoint, which `sandbox identity` uses (the sandbox test shows MIC attaching
// such an identity and a pod getting its token): bad or duplicate requests are refused; without --admin
// there is no such endpoint.

import assert from "node:assert/strict";

const MAIN = new URL("../../../scripts/sandbox/azure/main.ts", import.meta.url).pathname;

async function start(args: string[]) {
  const dir = await Deno.makeTempDir({ prefix: "emu-admin-" });
  await Deno.writeTextFile(
    `${dir}/c.json`,
    JSON.stringify({ identities: [], vms: [], vmss: [], servicePrincipals: [], imds: [] }),
  );
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", MAIN, ...args, `${dir}/c.json`],
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let text = "";
  while (!text.includes("\n")) {
    const { value, done } = await reader.read();
    if (done) break;
    text += value;
  }
  reader.releaseLock();
  child.stdout.cancel().catch(() => {});
  return {
    info: JSON.parse(text.split("\n")[0]) as { adminUrl?: string; subscriptionId: string },
    async stop() {
      child.kill("SIGTERM");
      await child.status;
      await Deno.remove(dir, { recursive: true });
    },
  };
}

Deno.test("emulator --admin: POST /identities and /federated-credentials register; bad and duplicate requests change nothing", async () => {
  const emu = await start(["--admin"]);
  try {
    const url = `${emu.info.adminUrl}/identities`;
    assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/identities$/);
    const post = (body: string) =>
      fetch(url, { method: "POST", body }).then(async (r) => ({ status: r.status, json: await r.json() }));
    const ok = await post(JSON.stringify({ resourceGroup: "ids", name: "web" }));
    assert.equal(ok.status, 200);
    assert.match(
      ok.json.id,
      /\/resourceGroups\/ids\/providers\/Microsoft\.ManagedIdentity\/userAssignedIdentities\/web$/,
    );
    assert.match(ok.json.clientId, /^[0-9a-f-]{36}$/);
    const dup = await post(JSON.stringify({ resourceGroup: "ids", name: "web" }));
    assert.equal(dup.status, 409);
    assert.match(dup.json.error, /already exists/);
    for (
      const body of [
        "not json",
        JSON.stringify({ resourceGroup: "ids" }),
        JSON.stringify({ resourceGroup: "ids", name: "a/b" }),
      ]
    ) {
      assert.equal((await post(body)).status, 400, body);
    }
    const putFic = (body: Record<string, unknown>) =>
      fetch(`${emu.info.adminUrl}/federated-credentials`, { method: "POST", body: JSON.stringify(body) })
        .then(async (r) => ({ status: r.status, json: await r.json() }));
    const fic = {
      identityId: ok.json.id,
      name: "default-web",
      issuer: "https://127.0.0.1:6443",
      subject: "system:serviceaccount:default:web",
      audiences: ["api://AzureADTokenExchange"],
    };
    assert.equal((await putFic(fic)).status, 200);
    // Stored: the same issuer and subject under another name is ARM's 409.
    const again = await putFic({ ...fic, name: "other" });
    assert.equal(again.status, 409);
    assert.match(again.json.error, /already has issuer/);
    const unknown = await putFic({ ...fic, identityId: ok.json.id.replace(/web$/, "nope") });
    assert.equal(unknown.status, 404);
    for (
      const [bad, hint] of [
        [{ issuer: "http://plain" }, /https/],
        [{ audiences: [] }, /exactly one audience/],
        [{ subject: "" }, /subject/],
        [{ name: "x" }, /name/],
        [{ identityId: 7 }, /identityId/],
      ] as const
    ) {
      const r = await putFic({ ...fic, name: "third", ...bad });
      assert.equal(r.status, 400, JSON.stringify(bad));
      assert.match(r.json.error, hint);
    }
    const get = await fetch(url);
    assert.equal(get.status, 404);
    await get.body?.cancel();
  } finally {
    await emu.stop();
  }
  const plain = await start([]);
  try {
    assert.equal(plain.info.adminUrl, undefined);
  } finally {
    await plain.stop();
  }
});
