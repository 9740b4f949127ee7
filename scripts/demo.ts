// `deno task demo`: the whole system, start to finish, on this machine: a real control plane, the Azure
// emulator, MIC and NMI as the real processes (with the service-account tokens of the generated RBAC) on
// one emulated node. An identity and its binding are created, a pod asks 169.254.169.254 for a token with
// an unmodified SDK (NMI's iptables rules send it to NMI when root; a loopback source address without), and
// calls the emulated ARM with it; a pod without a binding gets nothing. Everything is removed at the end.
// AAD_DEMO_LOOPBACK=1 runs the no-root variant (loopback source addresses, curl --interface) as root too.

import { down, exec, identity, NODE_NAME, pod, up } from "./sandbox/sandbox.ts";
import { readRecord, type SandboxRecord } from "./sandbox/sandbox_state.ts";
import { adalDemoArgv, sdkClientPaths } from "./sandbox/sdk_clients.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const t0 = performance.now();
const since = (t: number) => `${((performance.now() - t) / 1000).toFixed(1)} s`;
const step = (text: string) => console.log(`\n== ${text}`);
const say = (line: string) => console.log(`   ${line.replace(/\n/g, "\n   ")}`);
const dir = await Deno.makeTempDir({ prefix: "aad-demo-" });
const dec = new TextDecoder();

let stopping: Promise<unknown> | undefined;
const cleanUp = () => stopping ??= down(dir, (l) => say(l));
Deno.addSignalListener("SIGINT", () => cleanUp().finally(() => Deno.exit(130)));

async function kubectl(r: SandboxRecord, args: string[]): Promise<string> {
  const out = await new Deno.Command(r.cluster!.kubectl, {
    args: [`--kubeconfig=${r.cluster!.kubeconfigPath}`, ...args],
    stdout: "piped",
    stderr: "piped",
  }).output();
  return (dec.decode(out.stdout) + dec.decode(out.stderr)).trim();
}

function claims(jwt: string): Record<string, unknown> {
  const part = jwt.split(".")[1].replace(/-/g, "+").replace(/_/g, "/");
  return JSON.parse(atob(part + "=".repeat((4 - part.length % 4) % 4)));
}

function showClaims(jwt: string): void {
  const c = claims(jwt);
  const exp = new Date(Number(c.exp) * 1000).toISOString();
  say(`token claims: appid=${c.appid} aud=${c.aud} tid=${c.tid} exp=${exp}`);
  if (c.xms_mirid) say(`              xms_mirid=${c.xms_mirid}`);
  say("(the token itself is not shown)");
}

let failed = false;
try {
  step("starting: control plane, Azure emulator, MIC and NMI (as processes) on one node");
  // AAD_DEMO_LOOPBACK=1 shows the no-root variant even as root.
  const r0 = await up((l) => say(l), { dir, loopback: Deno.env.get("AAD_DEMO_LOOPBACK") === "1" });

  step(
    "an identity in Azure, and its AzureIdentity + AzureIdentityBinding (deno task sandbox identity demo)",
  );
  const id = await identity(dir, "demo", "default", (l) => say(l));

  step(
    "a pod labelled aadpodidbinding=demo is scheduled on the node (deno task sandbox pod app --binding demo)",
  );
  const tPod = performance.now();
  const app = await pod(dir, "app", "default", "demo", (l) => say(l));
  // MIC sees the pod, creates its AzureAssignedIdentity and attaches the identity to the scale set.
  const aai = `app-default-demo`;
  let status = "";
  const seen: string[] = [];
  while (status !== "Assigned" && performance.now() - tPod < 60_000) {
    status = await kubectl(r0, ["get", "azureassignedidentity", aai, "-o", "jsonpath={.status.status}"]);
    if (/NotFound/.test(status)) status = "";
    if (status && seen.at(-1) !== status) seen.push(status);
    if (status !== "Assigned") await new Promise((r) => setTimeout(r, 100));
  }
  if (status !== "Assigned") {
    throw new Error(`MIC did not assign the identity; statuses seen: ${seen.join(", ")}`);
  }
  say(
    `MIC: AzureAssignedIdentity ${aai} ${seen.join(" -> ")} after ${
      since(tPod)
    } (identity on the node's scale set)`,
  );
  say(await kubectl(r0, ["get", "azureassignedidentities", "-o", "wide"]));

  const r = (await readRecord(dir))!;
  if (app.netns) {
    step("the pod's unmodified Node.js app (@azure/identity ManagedIdentityCredential) asks 169.254.169.254");
    const t = performance.now();
    const out = await exec(dir, "app", "default", [
      "node",
      `${ROOT}tests/clients/node/get_token.mjs`,
      "managed",
      "https://management.azure.com/.default",
    ], "piped") as Deno.CommandOutput;
    if (!out.success) throw new Error(`the app failed: ${dec.decode(out.stderr)}`);
    say(`iptables in the node's namespace sent it to NMI, which served identity demo in ${since(t)}`);
    showClaims(JSON.parse(dec.decode(out.stdout)).token);

    step("the original's demo app (Go, go-autorest/adal): token from IMDS, then an ARM call with it");
    const t2 = performance.now();
    const adal = await exec(
      dir,
      "app",
      "default",
      adalDemoArgv(await sdkClientPaths(), {
        endpoint: r.azure!.armEndpoint,
        subscriptionId: r.azure!.subscriptionId,
        resourceGroup: r.azure!.resourceGroup,
      }, id.clientId),
      "piped",
    ) as Deno.CommandOutput;
    if (!adal.success) throw new Error(`the adal demo failed: ${dec.decode(adal.stderr)}`);
    const { vms } = JSON.parse(dec.decode(adal.stdout));
    say(
      `ARM (emulated) accepted the pod's token: VMs in ${r.azure!.resourceGroup}: ${vms.join(", ")} (${
        since(t2)
      })`,
    );

    step("a pod with no binding asks the same address");
    await pod(dir, "nobody", "default", undefined, (l) => say(l));
    const refused = await exec(dir, "nobody", "default", [
      "curl",
      "-s",
      "-w",
      " (HTTP %{http_code})",
      "-H",
      "Metadata: true",
      "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/",
    ], "piped") as Deno.CommandOutput;
    say(`NMI: ${dec.decode(refused.stdout)}`);
  } else {
    step("no root: the pod is a loopback address; curl sends from it to NMI");
    const t = performance.now();
    const url = `http://${
      r.nmi!.address
    }/metadata/identity/oauth2/token?api-version=2018-02-01&resource=https://management.azure.com/`;
    const out = await new Deno.Command("curl", {
      args: ["-s", "--interface", app.ip, "-H", "Metadata: true", url],
      stdout: "piped",
    }).output();
    const answer = JSON.parse(dec.decode(out.stdout));
    if (!answer.access_token) throw new Error(`NMI answered ${JSON.stringify(answer)}`);
    say(`NMI served identity demo in ${since(t)}`);
    showClaims(answer.access_token);
    step("a pod with no binding asks too");
    const other = await pod(dir, "nobody", "default", undefined, (l) => say(l));
    const refused = await new Deno.Command("curl", {
      args: ["-s", "-w", " (HTTP %{http_code})", "--interface", other.ip, "-H", "Metadata: true", url],
      stdout: "piped",
    }).output();
    say(`NMI: ${dec.decode(refused.stdout)}`);
  }
  step(
    `the same, by hand: deno task sandbox up (node ${NODE_NAME}); see README "Try your own app: the sandbox"`,
  );
} catch (e) {
  failed = true;
  console.error(`\ndemo failed: ${e instanceof Error ? e.message : e}`);
  const r = await readRecord(dir);
  for (const log of [r?.mic?.log, r?.nmi?.log]) {
    if (log) {
      console.error(
        `--- ${log}:\n${(await Deno.readTextFile(log).catch(() => "")).split("\n").slice(-15).join("\n")}`,
      );
    }
  }
} finally {
  step("cleaning up");
  await cleanUp();
  await Deno.remove(dir, { recursive: true }).catch(() => {});
  console.log(`\ndemo ${failed ? "FAILED" : "done"} in ${since(t0)}`);
}
if (failed) Deno.exit(1);
