// Run as a separate process by sdk_env.test.ts: the Azure SDKs configured only the way a user configures
// them, through the environment (AZURE_POD_IDENTITY_AUTHORITY_HOST for IMDS, NODE_EXTRA_CA_CERTS for the
// HTTPS endpoints) plus the custom-cloud options. It verifies each token it gets and prints the claims,
// never the token, as one JSON line.

import { ClientSecretCredential, ManagedIdentityCredential } from "@azure/identity";
import { ComputeManagementClient } from "@azure/arm-compute";
import { verifyToken } from "../../../../scripts/sandbox/azure/jwt.ts";

interface Plan {
  publicKeyPem: string;
  scope: string;
  managedIdentity: { label: string; clientId?: string; resourceId?: string; objectId?: string }[];
  arm: {
    tenantId: string;
    clientId: string;
    secret: string;
    authorityHost: string;
    armEndpoint: string;
    subscriptionId: string;
    resourceGroup: string;
    scaleSet: string;
  };
}

const plan: Plan = JSON.parse(Deno.args[0]);
const results: Record<string, unknown> = {};

for (const mi of plan.managedIdentity) {
  const { label, ...ids } = mi;
  try {
    const credential = ids.clientId
      ? new ManagedIdentityCredential({ clientId: ids.clientId })
      : ids.resourceId
      ? new ManagedIdentityCredential({ resourceId: ids.resourceId })
      : ids.objectId
      ? new ManagedIdentityCredential({ objectId: ids.objectId })
      : new ManagedIdentityCredential();
    const token = await credential.getToken(plan.scope);
    const claims = await verifyToken(token.token, plan.publicKeyPem);
    results[label] = {
      ok: true,
      appid: claims.appid,
      oid: claims.oid,
      xms_mirid: claims.xms_mirid,
      aud: claims.aud,
      expiresInSeconds: Math.round((token.expiresOnTimestamp - Date.now()) / 1000),
    };
  } catch (e) {
    results[label] = { ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
  }
}

try {
  const a = plan.arm;
  const credential = new ClientSecretCredential(a.tenantId, a.clientId, a.secret, {
    authorityHost: a.authorityHost,
    disableInstanceDiscovery: true,
  });
  const compute = new ComputeManagementClient(credential, a.subscriptionId, { endpoint: a.armEndpoint });
  const vmss = await compute.virtualMachineScaleSets.get(a.resourceGroup, a.scaleSet);
  results.arm = { ok: true, identityType: vmss.identity?.type };
} catch (e) {
  results.arm = { ok: false, error: e instanceof Error ? `${e.name}: ${e.message}` : String(e) };
}

console.log(JSON.stringify(results));
