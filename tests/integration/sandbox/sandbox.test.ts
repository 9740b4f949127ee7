// `deno task sandbox` as a user runs it, each subcommand a separate process: up, identity, pod, exec with
// curl and with the unmodified Node SDK, a federated identity (`identity NAME --federated`) whose token a pod
// gets through NMI with nothing on the scale set, a pod without a binding, env, then down, after which no
// process, network namespace, link or iptables rule it made is left.

import assert from "node:assert/strict";
import { netnsUnavailable } from "../../../scripts/sandbox/netns.ts";
import { alive } from "../../../scripts/sandbox/detached.ts";
import type { SandboxRecord } from "../../../scripts/sandbox/sandbox_state.ts";
import { sandbox } from "../../support/sandbox_cli.ts";

const skip = await netnsUnavailable();
if (skip) console.log(`sandbox test in network namespaces skipped: ${skip}`);

function claims(jwt: string): Record<string, unknown> {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part + "=".repeat((4 - part.length % 4) % 4)));
}

const TOKEN_URL =
  "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/";

/** The scale set's user-assigned identities as ARM shows them, read as MIC's service principal. */
async function scaleSetIdentities(dir: string, r: SandboxRecord): Promise<string[]> {
  const config = JSON.parse(await Deno.readTextFile(`${dir}/azure-config.json`));
  const sp = config.servicePrincipals[0] as { clientId: string; secret: string };
  const client = Deno.createHttpClient({ caCerts: [await Deno.readTextFile(r.azure!.caCertPath)] });
  try {
    const tokenUrl = new URL(`${r.azure!.tenantId}/oauth2/v2.0/token`, r.azure!.authorityHost);
    const tokenRes = await fetch(tokenUrl, {
      method: "POST",
      client,
      body: new URLSearchParams({
        grant_type: "client_credentials",
        client_id: sp.clientId,
        client_secret: sp.secret,
        scope: "https://management.azure.com/.default",
      }),
    });
    const { access_token } = await tokenRes.json();
    assert.ok(access_token, "a token for ARM");
    const vmss = await fetch(`${r.azure!.armEndpoint}${r.azure!.vmssId}?api-version=2022-03-01`, {
      client,
      headers: { authorization: `Bearer ${access_token}` },
    });
    assert.equal(vmss.status, 200);
    const body = await vmss.json();
    return Object.keys(body.identity?.userAssignedIdentities ?? {}).map((k) => k.toLowerCase());
  } finally {
    client.close();
  }
}

async function sh(cmd: string, args: string[]): Promise<string> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "null" }).output();
  return new TextDecoder().decode(out.stdout);
}

Deno.test({
  name:
    "sandbox: up, identity, pod, exec (curl, Node SDK), federated identity with nothing on the scale set, " +
    "unbound pod refused, env, down leaves nothing",
  ignore: !!skip,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "aad-sbx-test-" });
    let record: SandboxRecord | undefined;
    try {
      const upped = await sandbox(dir, ["up"]);
      assert.equal(upped.code, 0, upped.stderr);
      assert.match(upped.stderr, /MIC leading, NMI ready .*iptables redirect 169\.254\.169\.254:80/);
      const again = await sandbox(dir, ["up"]);
      assert.equal(again.code, 1);
      assert.match(again.stderr, /already up/);

      const id = await sandbox(dir, ["identity", "web"]);
      assert.equal(id.code, 0, id.stderr);
      const clientId = /client id (\S+)/.exec(id.stdout)![1];
      const dup = await sandbox(dir, ["identity", "web"]);
      assert.equal(dup.code, 1);
      assert.match(dup.stderr, /already exists/);
      const bad = await sandbox(dir, ["pod", "Bad_Name"]);
      assert.equal(bad.code, 2);

      assert.equal((await sandbox(dir, ["pod", "app", "--binding", "web"])).code, 0);
      assert.equal((await sandbox(dir, ["pod", "nobody"])).code, 0);

      const curl = await sandbox(dir, ["exec", "app", "--", "curl", "-s", "-H", "Metadata: true", TOKEN_URL]);
      assert.equal(curl.code, 0, curl.stderr);
      const answer = JSON.parse(curl.stdout);
      assert.equal(answer.client_id, clientId);
      assert.equal(claims(answer.access_token).appid, clientId);

      const sdk = await sandbox(dir, [
        "exec",
        "app",
        "--",
        "node",
        "tests/clients/node/get_token.mjs",
        "managed",
        "https://management.azure.com/.default",
      ]);
      assert.equal(sdk.code, 0, sdk.stderr);
      assert.equal(claims(JSON.parse(sdk.stdout).token).appid, clientId);

      const fed = await sandbox(dir, ["identity", "fed", "--federated"]);
      assert.equal(fed.code, 0, fed.stderr);
      assert.match(fed.stdout, /federated: credential for system:serviceaccount:default:fed \(issuer https:/);
      const fedClientId = /client id (\S+)/.exec(fed.stdout)![1];
      const fedId = /^\s+(\/subscriptions\/\S+)$/m.exec(fed.stdout)![1];
      const fedPod = await sandbox(dir, ["pod", "fedapp", "--binding", "fed"]);
      assert.equal(fedPod.code, 0, fedPod.stderr);
      assert.match(fedPod.stdout, /service account fed \(federated\)/);
      const fedCurl = await sandbox(dir, [
        "exec",
        "fedapp",
        "--",
        "curl",
        "-s",
        "-H",
        "Metadata: true",
        TOKEN_URL,
      ]);
      assert.equal(fedCurl.code, 0, fedCurl.stderr);
      const fedAnswer = JSON.parse(fedCurl.stdout);
      assert.equal(fedAnswer.client_id, fedClientId, fedCurl.stdout);
      assert.equal(claims(fedAnswer.access_token).appid, fedClientId);
      const fedSdk = await sandbox(dir, [
        "exec",
        "fedapp",
        "--",
        "node",
        "tests/clients/node/get_token.mjs",
        "managed",
        "https://vault.azure.net/.default",
      ]);
      assert.equal(fedSdk.code, 0, fedSdk.stderr);
      const fedToken = claims(JSON.parse(fedSdk.stdout).token);
      assert.equal(fedToken.appid, fedClientId);
      assert.equal(fedToken.xms_mirid, fedId);

      const refused = await sandbox(dir, [
        "exec",
        "nobody",
        "--",
        "curl",
        "-s",
        "-w",
        "\n%{http_code}",
        "-H",
        "Metadata: true",
        TOKEN_URL,
      ]);
      assert.match(refused.stdout, /no AzureIdentityBinding selects pod default\/nobody"\}\n400$/);

      const env = await sandbox(dir, ["env"]);
      assert.match(env.stdout, /^export KUBECONFIG=\S+$/m);
      assert.match(env.stdout, /^export AAD_SANDBOX_NMI=127\.0\.0\.1:2579$/m);
      assert.match(env.stdout, /^export AZURE_ARM_ENDPOINT=https:\/\/127\.0\.0\.1:\d+$/m);

      record = JSON.parse(await Deno.readTextFile(`${dir}/state.json`)) as SandboxRecord;
      assert.ok(record.namespaces.length === 4 && record.pids.length > 5);
      // The standard identity is attached to the scale set (MIC did it); the federated one never was.
      const attached = await scaleSetIdentities(dir, record);
      assert.ok(attached.some((a) => a.endsWith("/userassignedidentities/web")), attached.join());
      assert.ok(!attached.includes(fedId.toLowerCase()), attached.join());
      const nodeRules = await sh("ip", ["netns", "exec", record.node!.ns!, "iptables-save", "-t", "nat"]);
      assert.match(nodeRules, /-A PREROUTING -j aad-metadata/);

      const downed = await sandbox(dir, ["down"]);
      assert.equal(downed.code, 0, downed.stderr);
      assert.deepEqual(record.pids.filter((p) => alive(p.pid)).map((p) => p.what), []);
      const namespaces = await sh("ip", ["netns", "list"]);
      assert.deepEqual(record.namespaces.filter((ns) => namespaces.includes(ns)), []);
      const id5 = record.node!.id;
      assert.doesNotMatch(await sh("ip", ["link"]), new RegExp(`sbx${id5}`));
      const rootRules = await sh("iptables-save", []);
      assert.doesNotMatch(
        rootRules,
        new RegExp(`aad-metadata|${record.node!.hostIp!.replace(/\./g, "\\.")}`),
      );
      await assert.rejects(Deno.stat(dir));
      const status = await sandbox(dir, ["status"]);
      assert.equal(status.code, 1);
    } finally {
      await sandbox(dir, ["down"]);
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(`${dir}-logs`, { recursive: true }).catch(() => {});
    }
  },
});

Deno.test("sandbox: without root, loopback pods and the curl --interface line (standard and federated); down stops everything", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aad-sbx-lo-" });
  try {
    const upped = await sandbox(dir, ["up", "--loopback"]);
    assert.equal(upped.code, 0, upped.stderr);
    assert.match(upped.stderr, /no root: NMI at 127\.0\.0\.1:\d+/);
    const id = await sandbox(dir, ["identity", "web", "-n", "apps"]);
    assert.equal(id.code, 0, id.stderr);
    const clientId = /client id (\S+)/.exec(id.stdout)![1];
    const pod = await sandbox(dir, ["pod", "app", "--binding", "web", "-n", "apps"]);
    assert.equal(pod.code, 0, pod.stderr);
    const line = /curl -s --interface (\S+) -H Metadata:true '([^']+)'/.exec(pod.stdout);
    assert.ok(line, pod.stdout);
    const out = await sh("curl", ["-s", "--interface", line[1], "-H", "Metadata:true", line[2]]);
    assert.equal(JSON.parse(out).client_id, clientId, out);
    const fed = await sandbox(dir, ["identity", "fed", "-n", "apps", "--federated"]);
    assert.equal(fed.code, 0, fed.stderr);
    const fedClientId = /client id (\S+)/.exec(fed.stdout)![1];
    const fedPod = await sandbox(dir, ["pod", "fedapp", "--binding", "fed", "-n", "apps"]);
    assert.equal(fedPod.code, 0, fedPod.stderr);
    const fedLine = /curl -s --interface (\S+) -H Metadata:true '([^']+)'/.exec(fedPod.stdout)!;
    const fedOut = await sh("curl", ["-s", "--interface", fedLine[1], "-H", "Metadata:true", fedLine[2]]);
    assert.equal(JSON.parse(fedOut).client_id, fedClientId, fedOut);
    const exec = await sandbox(dir, ["exec", "app", "-n", "apps", "--", "true"]);
    assert.equal(exec.code, 1);
    assert.match(exec.stderr, /exec needs root.*curl --interface/);
    const record = JSON.parse(await Deno.readTextFile(`${dir}/state.json`)) as SandboxRecord;
    assert.equal(record.namespaces.length, 0);
    assert.equal((await sandbox(dir, ["down"])).code, 0);
    assert.deepEqual(record.pids.filter((p) => alive(p.pid)).map((p) => p.what), []);
  } finally {
    await sandbox(dir, ["down"]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(`${dir}-logs`, { recursive: true }).catch(() => {});
  }
});
