// Unmodified SDK applications (tests/clients) against NMI: @azure/identity under Node and azure-identity
// under Python, pointed at NMI with AZURE_POD_IDENTITY_AUTHORITY_HOST as a pod-identity user would. They
// connect from 127.0.0.1, which this test registers as the pod's IP on NMI's node. (Go's azidentity and adal
// hard-code 169.254.169.254; they run in the network-namespace e2e suite. Their probe shape, no query and
// no Metadata header, is covered in routes.test.ts.)

import assert from "node:assert/strict";
import { msiSpec, startHarness } from "./harness.ts";

const ROOT = new URL("../../../", import.meta.url).pathname;

async function run(cmd: string, args: string[], env: Record<string, string>) {
  const out = await new Deno.Command(cmd, { args, env, cwd: ROOT, stdout: "piped", stderr: "piped" })
    .output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

async function pythonBin(): Promise<string | undefined> {
  const fromEnv = Deno.env.get("AAD_PYTHON");
  if (fromEnv) return fromEnv;
  try {
    const text = await Deno.readTextFile(
      `${Deno.env.get("HOME")}/.cache/aad-pod-identity-sandbox/clients.env`,
    );
    return /^AAD_PYTHON=(.*)$/m.exec(text)?.[1];
  } catch {
    return undefined;
  }
}

Deno.test("unmodified JS and Python SDK apps get the pod's identity through NMI", async () => {
  const h = await startHarness({ attached: ["id-sdk", "id-other"] });
  try {
    const id = await h.createIdentity("id-sdk", msiSpec(h.ids["id-sdk"]));
    const b = await h.createBinding("b-sdk", "id-sdk", "sdk");
    const pod = await h.createPod("pod-sdk", { aadpodidbinding: "sdk" }, { ip: "127.0.0.1" });
    await h.assign(pod, id, b, "Assigned");
    const env = {
      PATH: Deno.env.get("PATH") ?? "",
      HOME: Deno.env.get("HOME") ?? "",
      AZURE_POD_IDENTITY_AUTHORITY_HOST: `http://127.0.0.1:${h.nmi.port}`,
    };
    const python = await pythonBin();
    const apps: [string, string[]][] = [
      ["node", ["tests/clients/node/get_token.mjs", "managed", "https://vault.azure.net/.default"]],
      ["node", ["tests/clients/node/get_token.mjs", "default", "https://vault.azure.net/.default"]],
    ];
    if (python) {
      apps.push([python, [
        "tests/clients/python/get_token.py",
        "managed",
        "https://vault.azure.net/.default",
      ]]);
      apps.push([python, [
        "tests/clients/python/get_token.py",
        "default",
        "https://vault.azure.net/.default",
      ]]);
    }
    for (const [cmd, args] of apps) {
      const r = await run(cmd, args, env);
      assert.equal(r.code, 0, `${cmd} ${args.join(" ")}: ${r.stderr}`);
      const claims = await h.emu.verifyToken(JSON.parse(r.stdout).token);
      assert.equal(claims.appid, h.ids["id-sdk"].clientId, `${cmd} ${args[1]}`);
    }
    // Asking for an identity the pod is not bound to fails in the SDK, with NMI's reason.
    const denied = await run("node", [
      "tests/clients/node/get_token.mjs",
      "managed",
      "https://vault.azure.net/.default",
    ], {
      ...env,
      AZURE_CLIENT_ID: h.ids["id-other"].clientId,
    });
    assert.notEqual(denied.code, 0);
    assert.ok(python, "the Python client is installed by `deno task setup`");
  } finally {
    await h.close();
  }
});
