// `deno task demo`: the system, locally, as far as it is built. Starts a real control plane, installs the
// CRDs, applies identities written in both field casings, shows how kubectl and lib/api see them, and
// rejects an invalid one. Then the Azure side: the emulator, the identity attached to a node pool's scale
// set by the real ARM SDK (MIC's job), and an unmodified Node.js app getting a token from that node's IMDS.
// Everything it starts is stopped at the end (or on Ctrl-C).

import { ComputeManagementClient } from "@azure/arm-compute";
import { ClientSecretCredential } from "@azure/identity";
import { type AzureIdentity, IdentityType } from "../lib/api/types.ts";
import { normalize } from "../lib/api/normalize.ts";
import { installCrds, startControlPlane } from "./sandbox/control_plane.ts";
import { type AzureEmulator, startAzureEmulator } from "./sandbox/azure/emulator.ts";

const root = new URL("..", import.meta.url).pathname;
const step = (text: string) => console.log(`\n== ${text}`);

step("starting a local control plane (etcd + kube-apiserver, built from Go modules on first use)");
const t0 = performance.now();
const cp = await startControlPlane();
let emu: AzureEmulator | undefined;
const stop = async () => {
  await emu?.stop();
  await cp.stop();
};
Deno.addSignalListener("SIGINT", () => stop().finally(() => Deno.exit(130)));
try {
  console.log(`kube-apiserver ready at ${cp.server} in ${Math.round(performance.now() - t0)} ms`);
  await installCrds(cp);
  console.log("CRDs installed from deploy/crds.yaml");

  step("kubectl apply -f deploy/demo/identities.yaml (PascalCase and camelCase objects)");
  const applied = await cp.kubectl(["apply", "-f", `${root}deploy/demo/identities.yaml`]);
  console.log((applied.stdout + applied.stderr).trim());

  step("kubectl get azureidentities,azureidentitybindings");
  console.log((await cp.kubectl(["get", "azureidentities,azureidentitybindings"])).stdout.trim());

  step("the same objects through lib/api (one internal shape, whatever the casing)");
  const list = JSON.parse((await cp.kubectl(["get", "azureidentities", "-o", "json"])).stdout) as {
    items: unknown[];
  };
  const identities: AzureIdentity[] = [];
  for (const raw of list.items) {
    const id = normalize(raw);
    if (id.kind === "AzureIdentity") {
      identities.push(id);
      console.log(
        `${id.metadata.name}: type=${id.spec.type} clientID=${id.spec.clientID} resourceID=${id.spec.resourceID}`,
      );
    }
  }

  step("an invalid identity is refused, naming the field");
  const bad = await cp.kubectl(
    ["apply", "-f", "-"],
    JSON.stringify({
      apiVersion: "aadpodidentity.k8s.io/v1",
      kind: "AzureIdentity",
      metadata: { name: "bad", namespace: "default" },
      spec: { type: 3, clientID: "not-a-guid" },
    }),
  );
  console.log(bad.stderr.trim());

  await azureSide(identities.filter((i) => i.spec.type === IdentityType.UserAssignedMSI));

  step(
    "not built yet: MIC (watches pods and assigns for them) and NMI (serves pods their tokens) arrive next",
  );
} finally {
  await stop();
  console.log("\ncontrol plane and Azure emulator stopped");
}

async function azureSide(wanted: AzureIdentity[]) {
  step("Azure emulator: ARM, Azure AD and IMDS on loopback (the only emulated part)");
  const subscriptionId = wanted[0].spec.resourceID.split("/")[2];
  // Real IMDS serves a new identity seconds after the attach; NMI hides that wait from pods, but this demo asks
  // the node's IMDS directly, so it turns the emulated delay off.
  emu = await startAzureEmulator({ subscriptionId, lroDurationMs: 1500, imdsPropagationDelayMs: 0 });
  const ca = await Deno.readTextFile(emu.caCertPath);
  for (const id of wanted) {
    const [, , , , resourceGroup, , , , name] = id.spec.resourceID.split("/");
    emu.addUserAssignedIdentity({ resourceGroup, name, clientId: id.spec.clientID });
  }
  const pool = emu.addVmss({ resourceGroup: "MC_demo", name: "aks-nodepool1" });
  const controller = emu.registerServicePrincipal({ displayName: "mic" });
  console.log(`ARM ${emu.armEndpoint}, Azure AD ${emu.authorityHost}, node pool ${pool.id}`);

  step("attach the identities to the node pool through ARM with @azure/arm-compute (what MIC will do)");
  const credential = new ClientSecretCredential(
    controller.tenantId,
    controller.clientId,
    controller.secret ?? "",
    {
      authorityHost: emu.authorityHost,
      disableInstanceDiscovery: true,
      tlsOptions: { ca },
    },
  );
  const compute = new ComputeManagementClient(credential, subscriptionId, {
    endpoint: emu.armEndpoint,
    tlsOptions: { ca },
  });
  const t0 = performance.now();
  const result = await compute.virtualMachineScaleSets.update("MC_demo", "aks-nodepool1", {
    identity: {
      type: "UserAssigned",
      userAssignedIdentities: Object.fromEntries(wanted.map((i) => [i.spec.resourceID, {}])),
    },
  }, { updateIntervalInMs: 250 });
  console.log(
    `long-running PATCH finished ${result.provisioningState} in ${Math.round(performance.now() - t0)} ms; ` +
      `calls to the emulator: ${emu.requests.routes().join(", ")}`,
  );

  step("an unmodified Node.js app on that node asks IMDS for a Key Vault token (@azure/identity)");
  const imds = await emu.startImds({ vmssResourceId: pool.id, instance: 0 });
  try {
    const app = new URL("../tests/clients/node/get_token.mjs", import.meta.url).pathname;
    const out = await new Deno.Command("node", {
      args: [app, "managed", "https://vault.azure.net/.default"],
      env: { AZURE_CLIENT_ID: wanted[0].spec.clientID, AZURE_POD_IDENTITY_AUTHORITY_HOST: imds.url },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const dec = new TextDecoder();
    if (!out.success) throw new Error(`the app failed: ${dec.decode(out.stderr)}`);
    const claims = await emu.verifyToken(JSON.parse(dec.decode(out.stdout)).token);
    console.log(
      `token for ${claims.xms_mirid}\n  appid=${claims.appid} aud=${claims.aud} (token itself not shown)`,
    );
  } finally {
    await imds.stop();
  }
}
