// The identity set-up the real-node tests share: an identity in the Azure emulator, its AzureIdentity and a
// binding selecting pods labelled `aadpodidbinding: <name>`, applied with kubectl as a user would; and the
// check that a token names exactly that identity.
import assert from "node:assert/strict";
import type { RealCluster } from "../../scripts/sandbox/node/cluster.ts";
import type { UserAssignedIdentityInfo } from "../../scripts/sandbox/azure/emulator.ts";
import { kubectlApply } from "./kubectl.ts";

/**
 * A new user-assigned identity `name` in the emulator, with its AzureIdentity (`identity` adds annotations
 * or spec fields, e.g. a federated identity's tenant) and a binding to pods labelled aadpodidbinding=`name`.
 */
export async function bindIdentity(
  c: RealCluster,
  name: string,
  resourceGroup: string,
  identity: { annotations?: Record<string, string>; spec?: Record<string, unknown> } = {},
): Promise<UserAssignedIdentityInfo> {
  const id = c.emu.addUserAssignedIdentity({ resourceGroup, name });
  await kubectlApply(c, [
    {
      apiVersion: "aadpodidentity.k8s.io/v1",
      kind: "AzureIdentity",
      metadata: {
        name,
        namespace: "default",
        ...(identity.annotations ? { annotations: identity.annotations } : {}),
      },
      spec: { type: 0, resourceID: id.id, clientID: id.clientId, ...identity.spec },
    },
    {
      apiVersion: "aadpodidentity.k8s.io/v1",
      kind: "AzureIdentityBinding",
      metadata: { name, namespace: "default" },
      spec: { azureIdentity: name, selector: name },
    },
  ]);
  return id;
}

/** The token's claims are `id`'s: its client ID and its resource ID (Azure AD lowercases xms_mirid's case). */
export function assertClaimsOf(
  claims: { appid?: unknown; xms_mirid?: unknown },
  id: UserAssignedIdentityInfo,
  who = "",
): void {
  assert.equal(claims.appid, id.clientId, `${who} appid`);
  assert.equal(String(claims.xms_mirid).toLowerCase(), id.id.toLowerCase(), `${who} xms_mirid`);
}
