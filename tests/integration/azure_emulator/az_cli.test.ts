// The Azure CLI itself (azure-cli of tests/clients/azcli, unmodified) against the emulator as a custom
// cloud: `az login --identity` takes a token from an emulated IMDS, then lists the subscriptions it can
// see on the emulated ARM, and `az account get-access-token` hands out that identity's token. Needs the
// az venv that `install-clients.sh --image-inputs` installs (cached; run here when missing, as the real-node
// tests do); skipped, with the reason, only when that install fails.

import assert from "node:assert/strict";
import { sandboxCacheDir } from "../../../scripts/sandbox/pki.ts";
import { type Harness, startHarness } from "./helpers.ts";

async function installedAzPython(): Promise<string | undefined> {
  const env = await Deno.readTextFile(`${sandboxCacheDir()}/image-inputs.env`).catch(() => "");
  const dir = /^AAD_AZCLI=(.+)$/m.exec(env)?.[1];
  if (!dir || !await Deno.stat(`${dir}/.complete`).then(() => true, () => false)) return undefined;
  return `${dir}/bin/python`;
}

/** The az venv's interpreter, installed first when missing (a fresh machine runs this before tests/node). */
async function azPython(): Promise<string | undefined> {
  const found = await installedAzPython();
  if (found) return found;
  const repo = new URL("../../../", import.meta.url).pathname;
  const out = await new Deno.Command("bash", {
    args: [`${repo}scripts/sandbox/install-clients.sh`, "--image-inputs"],
    cwd: repo,
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").pop();
    console.log(`az CLI tests skipped: install-clients.sh --image-inputs failed: ${why}`);
    return undefined;
  }
  return await installedAzPython();
}

const python = await azPython();

/** Runs `az args...` with its own config directory; exit code and output. */
async function az(config: string, imdsUrl: string, args: string[]) {
  const out = await new Deno.Command(python!, {
    args: ["-m", "azure.cli", ...args],
    env: {
      AZURE_CONFIG_DIR: config,
      AZURE_POD_IDENTITY_AUTHORITY_HOST: imdsUrl,
      REQUESTS_CA_BUNDLE: `${config}/ca.pem`,
      AZURE_CORE_COLLECT_TELEMETRY: "false",
    },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

/** A scale set with one identity, its IMDS, and az pointed at the emulator; runs `f`. */
async function withAz(
  f: (
    run: (args: string[]) => ReturnType<typeof az>,
    h: Harness,
    identity: { clientId: string; id: string },
  ) => Promise<void>,
) {
  const h = await startHarness();
  const config = await Deno.makeTempDir({ prefix: "az-config-" });
  try {
    const identity = h.emu.addUserAssignedIdentity({ resourceGroup: "MC", name: "cli" });
    const vmss = h.emu.addVmss({ resourceGroup: "MC", name: "pool", userAssignedIdentities: [identity.id] });
    const imds = await h.emu.startImds({ vmssResourceId: vmss.id, instance: 0 });
    await Deno.writeTextFile(`${config}/ca.pem`, h.ca);
    const run = (args: string[]) => az(config, imds.url, args);
    const registered = await run([
      ..."cloud register -n AzureEmulator --skip-endpoint-discovery".split(" "),
      "--endpoint-resource-manager",
      `${h.emu.armEndpoint}/`,
      "--endpoint-active-directory",
      h.emu.authorityHost,
      "--endpoint-active-directory-resource-id",
      "https://management.azure.com/",
    ]);
    assert.equal(registered.code, 0, registered.stderr);
    assert.equal((await run(["cloud", "set", "-n", "AzureEmulator"])).code, 0);
    await f(run, h, identity);
    await imds.stop();
  } finally {
    await Deno.remove(config, { recursive: true });
    await h.close();
  }
}

Deno.test({
  name: "az login --identity lists the emulated subscription; az account get-access-token is the identity's",
  ignore: !python,
  async fn() {
    await withAz(async (run, h, identity) => {
      const login = await run(["login", "--identity", "-o", "json"]);
      assert.equal(login.code, 0, login.stderr);
      const [account] = JSON.parse(login.stdout) as {
        id: string;
        tenantId: string;
        user: { type: string };
      }[];
      assert.equal(account.id, h.emu.subscriptionId);
      assert.equal(account.user.type, "servicePrincipal");
      const token = await run(["account", "get-access-token", "-o", "json"]);
      assert.equal(token.code, 0, token.stderr);
      const out = JSON.parse(token.stdout) as { accessToken: string; subscription: string };
      const claims = await h.emu.verifyToken(out.accessToken);
      assert.equal(claims.appid, identity.clientId);
      assert.equal(out.subscription, h.emu.subscriptionId);
      assert.ok(
        [...h.emu.requests].some((e) => e.route === "subscriptionList.get" && e.status === 200),
        "az listed the subscriptions on the emulated ARM",
      );
    });
  },
});

Deno.test({
  name: "az login --identity refuses an identity without any role in the subscription (nothing listed)",
  ignore: !python,
  async fn() {
    await withAz(async (run, h, identity) => {
      h.emu.setRoleScopes(identity.clientId, { write: [], assign: [] });
      const login = await run(["login", "--identity"]);
      assert.notEqual(login.code, 0);
      assert.match(login.stderr, /no subscriptions were found/i);
    });
  },
});
