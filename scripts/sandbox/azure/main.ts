// CLI: starts the Azure emulator from a JSON config, prints its endpoints and resources as one JSON line
// on stdout (secrets are not printed: the config already holds them), and runs until SIGINT / SIGTERM.
//
//   deno run -A scripts/sandbox/azure/main.ts [--admin] config.json
//
// --admin also serves, on 127.0.0.1 only, `POST /identities {"resourceGroup","name"}`, which registers a
// user-assigned identity while the emulator runs and answers its id and client id (the sandbox's
// `identity NAME` uses it), and `POST /federated-credentials {"identityId","name","issuer","subject",
// "audiences"}`, which puts a federated identity credential on such an identity (`identity NAME
// --federated`); its URL is printed as adminUrl.
//
// Clients then trust the CA with NODE_EXTRA_CA_CERTS (Azure SDKs) or DENO_CERT (Deno fetch) set to the
// printed caCertPath.

import { parseEmulatorConfig } from "./config.ts";
import { type AzureEmulator, type ImdsTarget, startAzureEmulator } from "./emulator.ts";
import { computeId, userAssignedIdentityId } from "./ids.ts";

function resolveRef(ref: string, subscriptionId: string, kind: "identity" | "vm" | "vmss"): string {
  if (ref.startsWith("/")) return ref;
  const [rg, name, ...rest] = ref.split("/");
  if (!rg || !name || rest.length) {
    throw new Error(`'${ref}' is neither a resource id nor <resourceGroup>/<name>`);
  }
  if (kind === "identity") return userAssignedIdentityId(subscriptionId, rg, name);
  return computeId(subscriptionId, rg, kind === "vm" ? "virtualMachines" : "virtualMachineScaleSets", name);
}

const NAME = /^[A-Za-z0-9][A-Za-z0-9_.()-]{0,127}$/;

async function readJson(req: Request): Promise<Record<string, unknown> | undefined> {
  try {
    const body = await req.json();
    return typeof body === "object" && body !== null && !Array.isArray(body) ? body : undefined;
  } catch {
    return undefined;
  }
}

function addIdentity(emu: AzureEmulator, body: Record<string, unknown>): Response {
  const { resourceGroup, name } = body;
  if (
    typeof resourceGroup !== "string" || !NAME.test(resourceGroup) || typeof name !== "string" ||
    !NAME.test(name)
  ) {
    return Response.json({ error: "resourceGroup and name must be Azure resource names" }, { status: 400 });
  }
  try {
    return Response.json(emu.addUserAssignedIdentity({ resourceGroup, name }));
  } catch (e) {
    return Response.json({ error: e instanceof Error ? e.message : String(e) }, { status: 409 });
  }
}

/** ARM's own validation (parseFederatedCredential) judges the fields; an unknown identity is a 404. */
function addFederatedCredential(emu: AzureEmulator, body: Record<string, unknown>): Response {
  const { identityId, name, issuer, subject, audiences } = body;
  if (typeof identityId !== "string" || typeof name !== "string") {
    return Response.json({ error: "identityId and name must be strings" }, { status: 400 });
  }
  try {
    emu.putFederatedCredential(identityId, {
      name,
      issuer: issuer as string,
      subject: subject as string,
      audiences: audiences as string[],
    });
    return Response.json({ identityId, name });
  } catch (e) {
    const message = e instanceof Error ? e.message : String(e);
    const status = message.startsWith("no identity") ? 404 : /already has issuer/.test(message) ? 409 : 400;
    return Response.json({ error: message }, { status });
  }
}

/** The runtime admin API (loopback only): registering user-assigned identities and federated credentials. */
export function startAdmin(emu: AzureEmulator): Deno.HttpServer<Deno.NetAddr> {
  const routes: Record<string, (emu: AzureEmulator, body: Record<string, unknown>) => Response> = {
    "/identities": addIdentity,
    "/federated-credentials": addFederatedCredential,
  };
  return Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, async (req) => {
    const route = routes[new URL(req.url).pathname];
    if (!route || req.method !== "POST") {
      return Response.json({ error: "only POST /identities and POST /federated-credentials" }, {
        status: 404,
      });
    }
    const body = await readJson(req);
    if (!body) return Response.json({ error: "body is not a JSON object" }, { status: 400 });
    return route(emu, body);
  });
}

async function main(args: string[]): Promise<number> {
  const admin = args[0] === "--admin";
  if (admin) args = args.slice(1);
  if (args.length !== 1 || args[0] === "-h" || args[0] === "--help") {
    console.error("usage: main.ts [--admin] <config.json>");
    return 2;
  }
  const config = parseEmulatorConfig(JSON.parse(await Deno.readTextFile(args[0])));
  const emu = await startAzureEmulator({
    subscriptionId: config.subscriptionId,
    tenantId: config.tenantId,
    location: config.location,
    lroDurationMs: config.lroDurationMs,
    lroRetryAfterSeconds: config.lroRetryAfterSeconds,
    throttle: config.throttle,
    imdsPropagationDelayMs: config.imdsPropagationDelayMs,
    computeThrottle: config.computeThrottle,
    maxIdentitiesPerPatch: config.maxIdentitiesPerPatch,
    knownResources: config.knownResources,
    federationCaCerts: config.federationCaFiles &&
      await Promise.all(config.federationCaFiles.map((f) => Deno.readTextFile(f))),
    strictResources: config.strictResources,
    imdsMetadataHeader: config.imdsMetadataHeader,
    hostname: config.hostname,
    armPort: config.armPort,
    aadPort: config.aadPort,
  });
  try {
    const sub = emu.subscriptionId;
    const identities = config.identities.map((i) => emu.addUserAssignedIdentity(i));
    const idRefs = (refs: string[] | undefined) => (refs ?? []).map((r) => resolveRef(r, sub, "identity"));
    const vms = config.vms.map((v) =>
      emu.addVm({ ...v, userAssignedIdentities: idRefs(v.userAssignedIdentities) })
    );
    const vmss = config.vmss.map((v) =>
      emu.addVmss({ ...v, userAssignedIdentities: idRefs(v.userAssignedIdentities) })
    );
    const servicePrincipals = [];
    for (const sp of config.servicePrincipals) {
      const certificatePem = sp.certificateFile ? await Deno.readTextFile(sp.certificateFile) : undefined;
      const info = emu.registerServicePrincipal({ ...sp, certificatePem });
      servicePrincipals.push({ clientId: info.clientId, tenantId: info.tenantId, objectId: info.objectId });
    }
    const imds = [];
    for (const i of config.imds) {
      const target: ImdsTarget = i.vm
        ? { vmResourceId: resolveRef(i.vm, sub, "vm") }
        : { vmssResourceId: resolveRef(i.vmss!, sub, "vmss"), instance: i.instance ?? 0 };
      const endpoint = await emu.startImds({ ...target, hostname: i.hostname, port: i.port });
      imds.push({ ...target, url: endpoint.url });
    }
    const adminServer = admin ? startAdmin(emu) : undefined;
    console.log(JSON.stringify({
      ...(adminServer ? { adminUrl: `http://127.0.0.1:${adminServer.addr.port}` } : {}),
      armEndpoint: emu.armEndpoint,
      authorityHost: emu.authorityHost,
      caCertPath: emu.caCertPath,
      subscriptionId: emu.subscriptionId,
      tenantId: emu.tenantId,
      location: emu.location,
      identities,
      vms,
      vmss,
      servicePrincipals,
      imds,
    }));
    const stop = Promise.withResolvers<void>();
    for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, () => stop.resolve());
    await stop.promise;
    await adminServer?.shutdown();
    return 0;
  } finally {
    await emu.stop();
  }
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (e) {
    console.error(e instanceof Error ? e.message : String(e));
    Deno.exit(1);
  }
}
