// The ARM model: user-assigned identities, VMs and scale sets with their identity blocks, and the
// long-running operations that move a resource from what was PATCHed (the model GET returns) to what
// IMDS serves (the committed identities), so a node sees a new identity only once the operation is done.

import {
  type ArmError,
  armError,
  invalidRequestContent,
  linkedAuthorizationFailed,
  resourceGroupNotFound,
  resourceNotFound,
} from "./arm_errors.ts";
import type { Directory, ManagedIdentityPrincipal, Principal } from "./directory.ts";
import { FederatedCredentialStore } from "./federated_credentials.ts";
import {
  applyIdentityPatch,
  type AttachedUserIdentity,
  cloneIdentity,
  emptyIdentity,
  hasSystem,
  type IdentityBlock,
  type IdentityJson,
  identityToJson,
  parseIdentityPatch,
  type Result,
  type SystemIdentity,
} from "./identity_patch.ts";
import {
  armEchoedId,
  computeId,
  type ComputeKind,
  idKey,
  isWithinScope,
  userAssignedIdentityId,
} from "./ids.ts";
import { drawDuration, type LroDuration, type Operation, OperationFaults, OperationTracker } from "./lro.ts";

interface UserAssignedIdentityRecord {
  id: string;
  name: string;
  resourceGroup: string;
  location: string;
  clientId: string;
  principalId: string;
  tenantId: string;
  tags: Record<string, string>;
}

export interface ComputeResource {
  kind: ComputeKind;
  id: string;
  name: string;
  resourceGroup: string;
  location: string;
  tags: Record<string, string>;
  /** What ARM returns: the last PATCH applied, even while its operation runs. */
  identity: IdentityBlock;
  /** What the platform has finished applying; IMDS serves these. */
  committed: IdentityBlock;
  provisioningState: "Succeeded" | "Updating" | "Failed";
  /** `vmId` of a VM, `uniqueId` of a scale set. */
  uniqueId: string;
  /** Scale sets only. */
  capacity: number;
  /**
   * When IMDS starts serving an identity the platform finished attaching (epoch ms, keyed by `idKey` of the
   * identity or `system`): the attach succeeds before the node's IMDS learns of it.
   */
  servableAt: Map<string, number>;
}

interface ArmStateOptions {
  subscriptionId: string;
  tenantId: string;
  location: string;
  lroDurationMs: LroDuration;
  /** Time from an operation's success until IMDS serves an identity it attached (default 0). */
  imdsPropagationDelayMs?: number;
  /** Most user-assigned ids one PATCH may name (Compute: 150); unlimited when absent. */
  maxIdentitiesPerRequest?: number;
  /** Operations a test made fail; none when absent. */
  operationFaults?: OperationFaults;
  directory: Directory;
  now?: () => number;
}

export interface AddComputeOptions {
  resourceGroup: string;
  name: string;
  systemAssigned?: boolean;
  /** Identities attached from the start (ids of identities added with `addUserAssignedIdentity`). */
  userAssignedIdentities?: string[];
  location?: string;
  /** Scale sets: instance count (default 2). */
  capacity?: number;
}

export interface AddIdentityOptions {
  resourceGroup: string;
  name: string;
  clientId?: string;
  principalId?: string;
  location?: string;
  /** Scopes where this identity may itself assign identities (e.g. a kubelet identity); none by default. */
  assignScopes?: string[];
  /** Scopes where this identity may write VMs / scale sets; default: the whole subscription. */
  writeScopes?: string[];
}

const COMPUTE_TYPE: Record<ComputeKind, string> = {
  virtualMachines: "Microsoft.Compute/virtualMachines",
  virtualMachineScaleSets: "Microsoft.Compute/virtualMachineScaleSets",
};

function isStringRecord(v: unknown): v is Record<string, string> {
  return typeof v === "object" && v !== null && !Array.isArray(v) &&
    Object.values(v).every((x) => typeof x === "string");
}

export class ArmState {
  readonly operations: OperationTracker;
  readonly federatedCredentials = new FederatedCredentialStore();
  #identities = new Map<string, UserAssignedIdentityRecord>();
  #compute = new Map<string, ComputeResource>();
  #resourceGroups = new Set<string>();

  constructor(readonly options: ArmStateOptions) {
    this.operations = new OperationTracker(options.now ?? Date.now);
  }

  get subscriptionId(): string {
    return this.options.subscriptionId;
  }

  get tenantId(): string {
    return this.options.tenantId;
  }

  hasResourceGroup(name: string): boolean {
    return this.#resourceGroups.has(name.toLowerCase());
  }

  addUserAssignedIdentity(opts: AddIdentityOptions): UserAssignedIdentityRecord {
    const id = userAssignedIdentityId(this.subscriptionId, opts.resourceGroup, opts.name);
    if (this.#identities.has(idKey(id))) throw new Error(`identity ${id} already exists`);
    const record: UserAssignedIdentityRecord = {
      id,
      name: opts.name,
      resourceGroup: opts.resourceGroup,
      location: opts.location ?? this.options.location,
      clientId: opts.clientId ?? crypto.randomUUID(),
      principalId: opts.principalId ?? crypto.randomUUID(),
      tenantId: this.tenantId,
      tags: {},
    };
    const principal: ManagedIdentityPrincipal = {
      kind: "managedIdentity",
      clientId: record.clientId,
      objectId: record.principalId,
      tenantId: record.tenantId,
      resourceId: id,
      assignScopes: [...(opts.assignScopes ?? [])],
      writeScopes: [...(opts.writeScopes ?? [`/subscriptions/${this.subscriptionId}`])],
    };
    this.options.directory.add(principal);
    this.#identities.set(idKey(id), record);
    this.#resourceGroups.add(opts.resourceGroup.toLowerCase());
    return { ...record };
  }

  /**
   * Deletes an identity resource. VMs keep their entry for it (as in Azure, where a re-created identity
   * with the same name is not the same principal), but IMDS no longer issues tokens for it.
   */
  deleteUserAssignedIdentity(id: string): boolean {
    const record = this.#identities.get(idKey(id));
    if (!record) return false;
    this.#identities.delete(idKey(id));
    this.federatedCredentials.deleteAll(id);
    this.options.directory.remove(record.principalId);
    return true;
  }

  getUserAssignedIdentity(id: string): UserAssignedIdentityRecord | undefined {
    const r = this.#identities.get(idKey(id));
    return r ? { ...r } : undefined;
  }

  #newSystemIdentity(resourceId: string): SystemIdentity {
    const system = { principalId: crypto.randomUUID(), clientId: crypto.randomUUID() };
    this.options.directory.add({
      kind: "managedIdentity",
      clientId: system.clientId,
      objectId: system.principalId,
      tenantId: this.tenantId,
      resourceId,
      assignScopes: [],
      writeScopes: [`/subscriptions/${this.subscriptionId}`],
    });
    return system;
  }

  #attached(id: string): AttachedUserIdentity | undefined {
    const r = this.#identities.get(idKey(id));
    return r ? { id: r.id, clientId: r.clientId, principalId: r.principalId } : undefined;
  }

  addCompute(kind: ComputeKind, opts: AddComputeOptions): ComputeResource {
    const id = computeId(this.subscriptionId, opts.resourceGroup, kind, opts.name);
    if (this.#compute.has(idKey(id))) throw new Error(`${id} already exists`);
    const identity = emptyIdentity();
    const users = opts.userAssignedIdentities ?? [];
    for (const uid of users) {
      const attached = this.#attached(uid);
      if (!attached) throw new Error(`identity ${uid} does not exist; add it first`);
      identity.userAssigned.set(idKey(uid), attached);
    }
    if (opts.systemAssigned) identity.system = this.#newSystemIdentity(id);
    identity.type = opts.systemAssigned
      ? (users.length ? "SystemAssigned, UserAssigned" : "SystemAssigned")
      : (users.length ? "UserAssigned" : "None");
    const resource: ComputeResource = {
      kind,
      id,
      name: opts.name,
      resourceGroup: opts.resourceGroup,
      location: opts.location ?? this.options.location,
      tags: {},
      identity,
      committed: cloneIdentity(identity),
      provisioningState: "Succeeded",
      uniqueId: crypto.randomUUID(),
      capacity: kind === "virtualMachineScaleSets" ? opts.capacity ?? 2 : 1,
      servableAt: new Map(),
    };
    this.#compute.set(idKey(id), resource);
    this.#resourceGroups.add(opts.resourceGroup.toLowerCase());
    return resource;
  }

  /** A VM or scale set by id (any casing), with finished operations applied. */
  getCompute(id: string, kind?: ComputeKind): ComputeResource | undefined {
    this.operations.settle();
    const r = this.#compute.get(idKey(id));
    return r && (kind === undefined || r.kind === kind) ? r : undefined;
  }

  /** Looks a resource up for an ARM request, producing the 404 ARM would send. */
  findCompute(kind: ComputeKind, resourceGroup: string, name: string): Result<ComputeResource> {
    if (!this.hasResourceGroup(resourceGroup)) {
      return { ok: false, error: resourceGroupNotFound(resourceGroup) };
    }
    const r = this.getCompute(computeId(this.subscriptionId, resourceGroup, kind, name), kind);
    if (!r) return { ok: false, error: resourceNotFound(COMPUTE_TYPE[kind], name, resourceGroup) };
    return { ok: true, value: r };
  }

  /** Every VM (or scale set) of a resource group, as VirtualMachines_List returns them. */
  listCompute(kind: ComputeKind, resourceGroup: string): Result<ComputeResource[]> {
    if (!this.hasResourceGroup(resourceGroup)) {
      return { ok: false, error: resourceGroupNotFound(resourceGroup) };
    }
    this.operations.settle();
    const prefix = idKey(`/subscriptions/${this.subscriptionId}/resourceGroups/${resourceGroup}/`);
    return {
      ok: true,
      value: [...this.#compute.values()].filter((r) => r.kind === kind && idKey(r.id).startsWith(prefix)),
    };
  }

  findIdentity(resourceGroup: string, name: string): Result<UserAssignedIdentityRecord> {
    if (!this.hasResourceGroup(resourceGroup)) {
      return { ok: false, error: resourceGroupNotFound(resourceGroup) };
    }
    const r = this.getUserAssignedIdentity(userAssignedIdentityId(this.subscriptionId, resourceGroup, name));
    if (!r) {
      return {
        ok: false,
        error: resourceNotFound("Microsoft.ManagedIdentity/userAssignedIdentities", name, resourceGroup),
      };
    }
    return { ok: true, value: r };
  }

  /**
   * Applies a PATCH body to a VM / scale set on behalf of `caller` and starts its operation.
   * Only `identity` and `tags` are modelled; other properties are accepted and ignored.
   */
  patchCompute(resource: ComputeResource, body: unknown, caller: Principal | undefined): Result<Operation> {
    if (typeof body !== "object" || body === null || Array.isArray(body)) {
      return { ok: false, error: invalidRequestContent("The request body must be a JSON object.") };
    }
    const record = body as Record<string, unknown>;
    const parsed = parseIdentityPatch(record.identity);
    if (!parsed.ok) return parsed;
    if (record.tags !== undefined && record.tags !== null && !isStringRecord(record.tags)) {
      return { ok: false, error: invalidRequestContent("tags must be an object of strings. Path 'tags'") };
    }
    let next: IdentityBlock | undefined;
    if (parsed.value) {
      const action = `${COMPUTE_TYPE[resource.kind]}/write`;
      const applied = applyIdentityPatch(resource.identity, parsed.value, {
        resourceId: resource.id,
        lookup: (key) => this.#attached(key),
        mayAssign: (id) => caller !== undefined && caller.assignScopes.some((s) => isWithinScope(id, s)),
        linkedAuthorizationFailed: (ids) =>
          linkedAuthorizationFailed(
            caller?.clientId ?? "unknown",
            caller?.objectId ?? "unknown",
            action,
            resource.id,
            ids,
          ),
        newSystemIdentity: () => this.#newSystemIdentity(resource.id),
        maxIdentitiesPerRequest: this.options.maxIdentitiesPerRequest,
      });
      if (!applied.ok) return applied;
      next = applied.value.next;
    }
    if (next) resource.identity = next;
    if (isStringRecord(record.tags)) resource.tags = { ...record.tags };
    resource.provisioningState = "Updating";
    const key = idKey(resource.id);
    const error = this.options.operationFaults?.take(key);
    const duration = drawDuration(this.options.lroDurationMs);
    const op = this.operations.start(
      key,
      duration,
      (done) => this.#commit(resource, done.doneAt),
      error && {
        error,
        // A failed operation applies nothing: the model falls back to what the platform had.
        onFailed: () => {
          resource.identity = cloneIdentity(resource.committed);
          resource.provisioningState = "Failed";
        },
      },
    );
    return { ok: true, value: op };
  }

  /** The platform finished an update: identities it attached reach IMDS after the propagation delay. */
  #commit(resource: ComputeResource, doneAt: number): void {
    const before = resource.committed;
    const next = cloneIdentity(resource.identity);
    const servableAt = doneAt + (this.options.imdsPropagationDelayMs ?? 0);
    for (const [k, u] of next.userAssigned) {
      if (before.userAssigned.get(k)?.principalId !== u.principalId) resource.servableAt.set(k, servableAt);
    }
    for (const k of [...resource.servableAt.keys()]) {
      if (k !== "system" && !next.userAssigned.has(k)) resource.servableAt.delete(k);
    }
    const systemBefore = hasSystem(before.type) ? before.system?.principalId : undefined;
    const systemAfter = hasSystem(next.type) ? next.system?.principalId : undefined;
    if (systemAfter !== undefined && systemAfter !== systemBefore) {
      resource.servableAt.set("system", servableAt);
    }
    resource.committed = next;
    resource.provisioningState = "Succeeded";
  }

  /** Whether an attached identity's resource still exists as the same principal. */
  isLive(u: AttachedUserIdentity): boolean {
    const live = this.#identities.get(idKey(u.id));
    return live !== undefined && live.principalId === u.principalId;
  }

  /** The GET body of a VM / scale set. */
  toJson(r: ComputeResource): Record<string, unknown> {
    return computeToJson(r, this.tenantId, (u) => this.isLive(u));
  }

  /** The identity block GET returns (type None when there is none), for test assertions. */
  identityJson(resourceId: string): IdentityJson {
    const r = this.getCompute(resourceId);
    if (!r) throw new Error(`no VM or scale set ${resourceId}`);
    return identityToJson(r.identity, this.tenantId, (u) => this.isLive(u)) ?? { type: "None" };
  }

  /** Identities IMDS on this resource may hand out tokens for: committed and still existing. */
  servableIdentities(resourceId: string): { system?: SystemIdentity; user: AttachedUserIdentity[] } {
    const r = this.getCompute(resourceId);
    if (!r) return { user: [] };
    const t = this.operations.now();
    const propagated = (key: string) => (r.servableAt.get(key) ?? 0) <= t;
    const user = [...r.committed.userAssigned.entries()]
      .filter(([k, u]) => this.isLive(u) && propagated(k))
      .map(([, u]) => u);
    const out: { system?: SystemIdentity; user: AttachedUserIdentity[] } = { user };
    if (r.committed.system && hasSystem(r.committed.type) && propagated("system")) {
      out.system = r.committed.system;
    }
    return out;
  }

  operationNotFound(id: string): ArmError {
    return armError(404, "OperationNotFound", `The operation '${id}' could not be found.`);
  }
}

function computeToJson(
  r: ComputeResource,
  tenantId: string,
  isLive?: (u: AttachedUserIdentity) => boolean,
): Record<string, unknown> {
  const json: Record<string, unknown> = {
    name: r.name,
    id: r.id,
    type: COMPUTE_TYPE[r.kind],
    location: r.location,
  };
  if (Object.keys(r.tags).length) json.tags = { ...r.tags };
  if (r.kind === "virtualMachineScaleSets") {
    json.sku = { name: "Standard_D2s_v3", tier: "Standard", capacity: r.capacity };
  }
  const identity = identityToJson(r.identity, tenantId, isLive);
  if (identity) json.identity = identity;
  json.properties = r.kind === "virtualMachines"
    ? {
      vmId: r.uniqueId,
      hardwareProfile: { vmSize: "Standard_D2s_v3" },
      provisioningState: r.provisioningState,
    }
    : {
      uniqueId: r.uniqueId,
      orchestrationMode: "Uniform",
      upgradePolicy: { mode: "Manual" },
      overprovision: false,
      singlePlacementGroup: true,
      provisioningState: r.provisioningState,
    };
  return json;
}

export function identityResourceToJson(r: UserAssignedIdentityRecord): Record<string, unknown> {
  return {
    id: armEchoedId(r.id),
    name: r.name,
    type: "Microsoft.ManagedIdentity/userAssignedIdentities",
    location: r.location,
    tags: { ...r.tags },
    properties: {
      tenantId: r.tenantId,
      principalId: r.principalId,
      clientId: r.clientId,
      isolationScope: "None",
    },
  };
}
