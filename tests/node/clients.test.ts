// Unmodified SDK images in pods on a real node (one cluster start): the JS, Python and Go clients, the
// original's v1.8.17 demo (adal) from deploy/demo and the Azure CLI each get exactly the token of the
// identity their pod is bound to, through 169.254.169.254 and NMI; the same images in a pod no binding
// selects get nothing. Pod created -> first token is printed per SDK.

import assert from "node:assert/strict";
import { parse } from "yaml";
import { realNodeUnavailable } from "../../scripts/sandbox/node/preflight.ts";
import { nodeName, type RealCluster, startRealCluster } from "../../scripts/sandbox/node/cluster.ts";
import { SDK_NODE_IMAGE } from "../../scripts/images/build.ts";
import {
  AZ_CLI_IMAGE,
  buildSdkImages,
  DEMO_IMAGE,
  SDK_GO_IMAGE,
  SDK_PYTHON_IMAGE,
} from "../../scripts/images/sdk_images.ts";
import type { UserAssignedIdentityInfo } from "../../scripts/sandbox/azure/emulator.ts";
import { leftovers } from "./leftovers.ts";
import { assertClaimsOf, bindIdentity } from "./identity.ts";
import { kubectlJson, lastJsonLine, runPodToEnd, until } from "./kubectl.ts";

const skip = await realNodeUnavailable();
if (skip) console.log(`real-node SDK client tests skipped: ${skip}`);

const RG = "MC_realnode";
const DEMO_YAML = new URL("../../deploy/demo/demo.yaml", import.meta.url);

/** Polls with this file's deadline, 120 s. */
const waitFor = <T>(what: string, f: () => Promise<T | undefined>) => until(what, f, 120_000, 100);

/** The claims of a JWT (not verified here: the emulator's ARM verifies where it matters). */
function claims(jwt: string): Record<string, string> {
  const payload = jwt.split(".")[1] ?? "";
  return JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/")));
}

function assertTokenOf(jwt: string, id: UserAssignedIdentityInfo, who: string): void {
  assertClaimsOf(claims(jwt), id, who);
}

interface Container {
  image: string;
  command?: string[];
  args?: string[];
}

interface Finished {
  phase: string;
  logs: string;
  /** Wall-clock ms when the pod was created (for firstToken). */
  createdAt: number;
}

/**
 * Seconds from `createdAt` to when the node's IMDS handed NMI the first token of `id` (NMI passes it on to
 * the pod at once): the pod's first token, read from the emulator's request log.
 */
function firstToken(c: RealCluster, id: UserAssignedIdentityInfo, createdAt: number): number {
  const served = [...c.emu.requests].find((e) =>
    e.route === "imds.token" && e.status === 200 && Date.parse(e.time) >= createdAt - 1000 &&
    (e.query.msi_res_id?.toLowerCase() === id.id.toLowerCase() || e.query.client_id === id.clientId)
  );
  assert.ok(served, `no IMDS token for ${id.name} in the emulator's log`);
  return (Date.parse(served.time) + served.durationMs - createdAt) / 1000;
}

/** Creates a pod running `container` to its end; its phase and logs. */
async function runToEnd(c: RealCluster, name: string, binding: string | undefined, container: Container) {
  const createdAt = Date.now();
  const { phase, logs } = await runPodToEnd(c, {
    apiVersion: "v1",
    kind: "Pod",
    metadata: { name, namespace: "default", labels: binding ? { aadpodidbinding: binding } : {} },
    spec: {
      restartPolicy: "Never",
      nodeName: nodeName(1),
      containers: [{ name: "app", imagePullPolicy: "Never", ...container }],
    },
  }, 120_000);
  return { phase, logs, createdAt } satisfies Finished;
}

/** The last JSON object line a client printed. */
function lastJson(logs: string): Record<string, unknown> {
  const out = lastJsonLine(logs);
  assert.ok(out, `no JSON line in: ${logs}`);
  return out;
}

const timings: Record<string, number> = {};

function report(sdk: string, seconds: number): void {
  timings[sdk] = Math.round(seconds * 100) / 100;
  console.log(`  ${sdk}: pod created -> token ${seconds.toFixed(2)} s`);
}

/** The JS client (sdk-node): it stamps when its token arrived. */
async function nodeSdk(c: RealCluster, id: UserAssignedIdentityInfo, bound: boolean): Promise<void> {
  const t0 = Date.now();
  const r = await runToEnd(c, bound ? "js-bound" : "js-unbound", bound ? id.name : undefined, {
    image: SDK_NODE_IMAGE,
  });
  const out = lastJson(r.logs);
  if (!bound) {
    assert.equal(r.phase, "Failed", r.logs);
    assert.equal(out.appid, undefined);
    return;
  }
  assert.equal(r.phase, "Succeeded", r.logs);
  assert.equal(out.appid, id.clientId);
  assert.equal(String(out.xms_mirid).toLowerCase(), id.id.toLowerCase());
  report("JS @azure/identity", (Number(out.receivedAt) - t0) / 1000);
}

/** A client that prints {"token": ...} (Python azure-identity, Go azidentity). */
async function tokenPrinter(
  c: RealCluster,
  sdk: string,
  pod: string,
  image: string,
  id: UserAssignedIdentityInfo,
  bound: boolean,
): Promise<void> {
  const r = await runToEnd(c, `${pod}-${bound ? "bound" : "unbound"}`, bound ? id.name : undefined, {
    image,
  });
  if (!bound) {
    assert.equal(r.phase, "Failed", r.logs);
    assert.doesNotMatch(r.logs, /"token"/);
    return;
  }
  assert.equal(r.phase, "Succeeded", r.logs);
  assertTokenOf(String(lastJson(r.logs).token), id, sdk);
  report(sdk, firstToken(c, id, r.createdAt));
}

/** go-autorest adal (sdk-go's adal-demo): its token, then an ARM call with it to the emulated ARM. */
async function adalWithArm(c: RealCluster, id: UserAssignedIdentityInfo): Promise<void> {
  const r = await runToEnd(c, "adal-arm", id.name, {
    image: SDK_GO_IMAGE,
    command: ["/usr/local/bin/adal-demo", c.emu.armEndpoint, c.emu.subscriptionId, RG, id.clientId],
  });
  assert.equal(r.phase, "Succeeded", r.logs);
  // adal-demo prints the access token adal got and the VM names the ARM call listed.
  const out = lastJson(r.logs) as { token: string; vms: string[] };
  assertTokenOf(out.token, id, "adal");
  assert.ok(Array.isArray(out.vms));
  report("Go adal", firstToken(c, id, r.createdAt));
}

/** deploy/demo's Pod with only its image and ids changed (the emulator's subscription, group, identity). */
function demoPod(id: UserAssignedIdentityInfo, subscriptionId: string, name: string, bound: boolean) {
  const docs = (Deno.readTextFileSync(DEMO_YAML).split(/^---$/m)).map((d) => parse(d)).filter(Boolean);
  const pod = docs.find((d) => d.kind === "Pod");
  pod.metadata.name = name;
  if (!bound) delete pod.metadata.labels;
  else pod.metadata.labels.aadpodidbinding = id.name;
  const container = pod.spec.containers[0];
  container.image = DEMO_IMAGE;
  container.args = [
    `--subscription-id=${subscriptionId}`,
    `--resource-group=${RG}`,
    `--identity-client-id=${id.clientId}`,
  ];
  return pod;
}

/** The original's demo (adal): a token in its log, which the emulated ARM accepts. */
async function originalDemo(c: RealCluster, id: UserAssignedIdentityInfo, bound: boolean): Promise<void> {
  const name = bound ? "demo" : "demo-unbound";
  const createdAt = Date.now();
  const created = await c.kubectl(
    ["create", "-f", "-"],
    JSON.stringify(demoPod(id, c.emu.subscriptionId, name, bound)),
  );
  assert.equal(created.code, 0, created.stderr);
  const want = bound ? /Try decoding your token (\S+) at/ : /Failed to acquire token from IMDS/;
  const match = await waitFor(`the demo's log (${name})`, async () => {
    const logs = await c.kubectl(["logs", name]);
    return logs.code === 0 ? (want.exec(logs.stdout + logs.stderr) ?? undefined) : undefined;
  });
  const logs = (await c.kubectl(["logs", name])).stdout;
  await c.kubectl(["delete", "pod", name, "--wait=false"]);
  if (!bound) {
    assert.doesNotMatch(logs, /successfully acquired/);
    return;
  }
  assertTokenOf(match[1], id, "demo");
  // v1.8.17's demo prints its token and makes no ARM call; the emulated ARM takes that token as it would
  // the older demo's VM list.
  const vms = await armGet(
    c,
    match[1],
    `/subscriptions/${c.emu.subscriptionId}/resourceGroups/${RG}` +
      "/providers/Microsoft.Compute/virtualMachines?api-version=2019-12-01",
  );
  assert.equal(vms.status, 200, JSON.stringify(vms.body));
  assert.match(
    logs,
    /metadata\/instance\?api-version=2017-08-01": \{/,
    "the IMDS instance call went through",
  );
  report("original demo v1.8.17 (adal)", firstToken(c, id, createdAt));
}

async function armGet(c: RealCluster, token: string, path: string) {
  const ca = await Deno.readTextFile(c.emu.caCertPath);
  const client = Deno.createHttpClient({ caCerts: [ca] });
  try {
    const res = await fetch(`${c.emu.armEndpoint}${path}`, {
      headers: { authorization: `Bearer ${token}` },
      client,
    });
    return { status: res.status, body: await res.json() };
  } finally {
    client.close();
  }
}

/** `az cloud register` (the emulator as a custom cloud), `az login --identity`, `az account get-access-token`. */
function azScript(c: RealCluster): string {
  return [
    "set -e",
    `az cloud register -n AzureEmulator --skip-endpoint-discovery --endpoint-resource-manager ${c.emu.armEndpoint}/` +
    ` --endpoint-active-directory ${c.emu.authorityHost} --endpoint-active-directory-resource-id https://management.azure.com/`,
    "az cloud set -n AzureEmulator",
    "az login --identity -o none",
    "echo '---'",
    "az account get-access-token -o json",
  ].join("\n");
}

async function azCli(c: RealCluster, id: UserAssignedIdentityInfo, bound: boolean): Promise<void> {
  const r = await runToEnd(c, bound ? "az-bound" : "az-unbound", bound ? id.name : undefined, {
    image: AZ_CLI_IMAGE,
    command: ["/bin/sh", "-c", azScript(c)],
  });
  if (!bound) {
    assert.equal(r.phase, "Failed", r.logs);
    assert.doesNotMatch(r.logs, /accessToken/);
    return;
  }
  assert.equal(r.phase, "Succeeded", r.logs);
  const out = JSON.parse(r.logs.slice(r.logs.indexOf("---") + 3)) as Record<string, string>;
  assertTokenOf(out.accessToken, id, "az");
  assert.equal(out.subscription, c.emu.subscriptionId);
  assert.equal(out.tenant, id.tenantId);
  report("Azure CLI (az login --identity)", firstToken(c, id, r.createdAt));
}

Deno.test({
  name: "real node: unmodified SDK images (JS, Python, Go, the original's demo, az) get exactly their token",
  ignore: !!skip,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const dir = await Deno.makeTempDir({ prefix: "aad-clients-" });
    const logDir = `${dir}-logs`;
    const c = await startRealCluster({
      nodes: 1,
      dir,
      logDir,
      log: (l) => console.log(`  ${l}`),
      extraImages: async (ca) => {
        const built = await buildSdkImages(ca);
        console.log(`  SDK image builds (s, 0 = cached): ${JSON.stringify(built.buildSeconds)}`);
        return built.tars;
      },
    });
    let stopped = false;
    try {
      await waitFor("NMI Ready", async () => {
        const ds = await kubectlJson<{ status: { numberReady?: number } }>(c, ["get", "daemonset", "nmi"]);
        return ds.status.numberReady === 1 ? true : undefined;
      });
      const ids: Record<string, UserAssignedIdentityInfo> = {};
      for (const sdk of ["js", "python", "go", "adal", "demo", "az"]) {
        ids[sdk] = await bindIdentity(c, sdk, RG);
      }

      await t.step("JS (@azure/identity) gets its identity's token", () => nodeSdk(c, ids.js, true));
      await t.step(
        "Python (azure-identity) gets its identity's token",
        () => tokenPrinter(c, "Python azure-identity", "py", SDK_PYTHON_IMAGE, ids.python, true),
      );
      await t.step(
        "Go (azidentity) gets its identity's token",
        () => tokenPrinter(c, "Go azidentity", "go", SDK_GO_IMAGE, ids.go, true),
      );
      await t.step("Go adal gets its token and the emulated ARM takes it", () => adalWithArm(c, ids.adal));
      await t.step(
        "deploy/demo's Pod (the original's v1.8.17 demo, adal) gets its token",
        () => originalDemo(c, ids.demo, true),
      );
      await t.step(
        "az login --identity; az account get-access-token gives its identity's token",
        () => azCli(c, ids.az, true),
      );
      await t.step("a pod no binding selects gets nothing from any of them", async () => {
        await nodeSdk(c, ids.js, false);
        await tokenPrinter(c, "Python", "py", SDK_PYTHON_IMAGE, ids.python, false);
        await tokenPrinter(c, "Go", "go", SDK_GO_IMAGE, ids.go, false);
        await originalDemo(c, ids.demo, false);
        await azCli(c, ids.az, false);
      });
      console.log(`  pod created -> token (s): ${JSON.stringify(timings)}`);
      await t.step("stopping the cluster leaves nothing behind", async () => {
        const nodes = c.nodes;
        await c.stop();
        stopped = true;
        console.log(`  timings: ${JSON.stringify(c.timings)}`);
        assert.deepEqual(await leftovers(nodes), []);
      });
    } finally {
      if (!stopped) await c.stop().catch((e) => console.error(`  cluster stop: ${e}`));
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      await Deno.remove(logDir, { recursive: true }).catch(() => {});
    }
  },
});
