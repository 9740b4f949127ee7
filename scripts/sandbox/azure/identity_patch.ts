// The identity block of a VM / scale set and the PATCH semantics ARM applies to it (pure, no I/O).
//
// What is modelled (docs/protocols.md, "## ARM identity assignment"): `userAssignedIdentities` is a
// dictionary merged by PATCH, `{}` adds an id, `null` removes it, the `type` in the body is authoritative (sending `UserAssigned` to a
// VM with a system-assigned identity drops that identity, as in Azure), ids compare case-insensitively,
// and bodies Compute rejects are rejected with the same codes.

import {
  type ArmError,
  failedIdentityOperation,
  invalidParameter,
  invalidRequestContent,
  tooManyIdentities,
} from "./arm_errors.ts";
import { armEchoedId, idKey, isUserAssignedIdentityId } from "./ids.ts";

type IdentityType = "None" | "SystemAssigned" | "UserAssigned" | "SystemAssigned, UserAssigned";

export interface AttachedUserIdentity {
  /** The id as the identity resource spells it. */
  id: string;
  clientId: string;
  principalId: string;
}

export interface SystemIdentity {
  principalId: string;
  /** Application id of the system-assigned identity; tokens carry it as `appid`. */
  clientId: string;
}

export interface IdentityBlock {
  type: IdentityType;
  system?: SystemIdentity;
  /** Keyed by `idKey(id)`. */
  userAssigned: Map<string, AttachedUserIdentity>;
}

interface IdentityPatchEntry {
  /** The id as the caller spelled it. */
  id: string;
  op: "add" | "remove";
}

export interface IdentityPatch {
  type: IdentityType;
  /** Keyed by `idKey(id)`; absent when the body had no `userAssignedIdentities`. */
  userAssignedIdentities?: Map<string, IdentityPatchEntry>;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ArmError };

export function emptyIdentity(): IdentityBlock {
  return { type: "None", userAssigned: new Map() };
}

export function hasSystem(type: IdentityType): boolean {
  return type === "SystemAssigned" || type === "SystemAssigned, UserAssigned";
}

function hasUser(type: IdentityType): boolean {
  return type === "UserAssigned" || type === "SystemAssigned, UserAssigned";
}

/** Accepts the spellings ARM accepts: any case, with or without the space after the comma. */
export function parseIdentityType(value: unknown): IdentityType | undefined {
  if (typeof value !== "string") return undefined;
  const compact = value.replace(/\s+/g, "").toLowerCase();
  switch (compact) {
    case "none":
      return "None";
    case "systemassigned":
      return "SystemAssigned";
    case "userassigned":
      return "UserAssigned";
    case "systemassigned,userassigned":
    case "userassigned,systemassigned":
      return "SystemAssigned, UserAssigned";
    default:
      return undefined;
  }
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Validates the `identity` property of a PATCH body. `undefined`/`null` mean "leave the identity alone"
 * and yield `value: undefined`.
 */
export function parseIdentityPatch(identity: unknown): Result<IdentityPatch | undefined> {
  if (identity === undefined || identity === null) return { ok: true, value: undefined };
  if (!isPlainObject(identity)) {
    return { ok: false, error: invalidRequestContent("identity must be an object. Path 'identity'") };
  }
  if (identity.type === undefined || identity.type === null) {
    return {
      ok: false,
      error: invalidParameter("Required parameter 'identity.type' is missing (null).", "identity.type"),
    };
  }
  const type = parseIdentityType(identity.type);
  if (!type) {
    return {
      ok: false,
      error: invalidRequestContent(
        `Error converting value ${
          JSON.stringify(identity.type)
        } to type 'ResourceIdentityType'. Path 'identity.type'`,
      ),
    };
  }
  const raw = identity.userAssignedIdentities;
  if (raw === undefined || raw === null) return { ok: true, value: { type } };
  if (!isPlainObject(raw)) {
    return {
      ok: false,
      error: invalidRequestContent(
        "userAssignedIdentities must be an object. Path 'identity.userAssignedIdentities'",
      ),
    };
  }
  const entries = new Map<string, IdentityPatchEntry>();
  for (const [id, value] of Object.entries(raw)) {
    if (!isUserAssignedIdentityId(id)) {
      return {
        ok: false,
        error: invalidParameter(
          `The user assigned identity resource id '${id}' is invalid. It must be of the form ` +
            "'/subscriptions/{subscriptionId}/resourceGroups/{resourceGroupName}/providers/" +
            "Microsoft.ManagedIdentity/userAssignedIdentities/{identityName}'.",
          "identity.userAssignedIdentities",
        ),
      };
    }
    if (value !== null && !isPlainObject(value)) {
      return {
        ok: false,
        error: invalidRequestContent(
          `Unexpected value for user assigned identity '${id}'; expected an object or null. ` +
            "Path 'identity.userAssignedIdentities'",
        ),
      };
    }
    const op = value === null ? "remove" : "add";
    const key = idKey(id);
    // ARM ids are case-insensitive, so two spellings of one id are a duplicate (Azure/aad-pod-identity#556).
    if (entries.has(key)) {
      return {
        ok: false,
        error: invalidParameter(
          `ResourceIdentity identityId '${id}' cannot be duplicated in the provided identityIds list.`,
          "resourceIdentity.identityIds",
        ),
      };
    }
    entries.set(key, { id, op });
  }
  if (!hasUser(type) && entries.size > 0) {
    return {
      ok: false,
      error: invalidParameter(
        `ResourceIdentity identityIds should not be provided if the type is "${type}".`,
        "identity",
      ),
    };
  }
  return { ok: true, value: { type, userAssignedIdentities: entries } };
}

export interface ApplyContext {
  /** Id of the VM / scale set being patched (for error messages). */
  resourceId: string;
  /** The identity resource for an id key, if it exists. */
  lookup(key: string): AttachedUserIdentity | undefined;
  /** Whether the caller holds `userAssignedIdentities/assign/action` on this identity id. */
  mayAssign(id: string): boolean;
  /** Builds the 403 naming the identities the caller may not assign. */
  linkedAuthorizationFailed(ids: string[]): ArmError;
  /** A fresh system-assigned identity when the type newly includes SystemAssigned. */
  newSystemIdentity(): SystemIdentity;
  /** Most user-assigned ids (added or removed) one request may name; unlimited when absent. */
  maxIdentitiesPerRequest?: number;
}

interface AppliedPatch {
  next: IdentityBlock;
  added: string[];
  removed: string[];
}

/** Computes the identity block after `patch`, or the error Compute would answer. Does not mutate `current`. */
export function applyIdentityPatch(
  current: IdentityBlock,
  patch: IdentityPatch,
  ctx: ApplyContext,
): Result<AppliedPatch> {
  const requested = [...(patch.userAssignedIdentities?.values() ?? [])];
  const adds = requested.filter((e) => e.op === "add");

  // ARM checks linked access before the resource provider sees the request, so 403 wins over "not found".
  const denied = adds.filter((e) => !ctx.mayAssign(e.id)).map((e) => e.id);
  if (denied.length > 0) return { ok: false, error: ctx.linkedAuthorizationFailed(denied) };
  if (ctx.maxIdentitiesPerRequest !== undefined && requested.length > ctx.maxIdentitiesPerRequest) {
    return {
      ok: false,
      error: tooManyIdentities(ctx.resourceId, requested.length, ctx.maxIdentitiesPerRequest),
    };
  }
  const missing = adds.filter((e) => !ctx.lookup(idKey(e.id))).map((e) => e.id);
  if (missing.length > 0) return { ok: false, error: failedIdentityOperation(ctx.resourceId, missing) };

  const userAssigned = new Map<string, AttachedUserIdentity>();
  const added: string[] = [];
  const removed: string[] = [];
  if (hasUser(patch.type)) {
    if (hasUser(current.type)) {
      for (const [k, v] of current.userAssigned) userAssigned.set(k, v);
    }
    for (const entry of requested) {
      const key = idKey(entry.id);
      if (entry.op === "remove") {
        const existing = userAssigned.get(key);
        if (existing) {
          userAssigned.delete(key);
          removed.push(existing.id);
        }
      } else if (!userAssigned.has(key)) {
        const identity = ctx.lookup(key)!;
        userAssigned.set(key, { ...identity });
        added.push(identity.id);
      }
    }
    if (userAssigned.size === 0) {
      return {
        ok: false,
        error: invalidParameter(
          `The identity ids must not be null or empty for '${patch.type}' identity type.`,
          "identity.userAssignedIdentities",
        ),
      };
    }
  } else {
    for (const v of current.userAssigned.values()) removed.push(v.id);
  }

  let system: SystemIdentity | undefined;
  if (hasSystem(patch.type)) {
    system = current.system && hasSystem(current.type) ? current.system : ctx.newSystemIdentity();
  }

  const next: IdentityBlock = { type: patch.type, userAssigned };
  if (system) next.system = system;
  return { ok: true, value: { next, added, removed } };
}

export interface IdentityJson {
  type: IdentityType;
  principalId?: string;
  tenantId?: string;
  /** `null` ids: the identity resource was deleted (or re-created as another principal) since it was attached. */
  userAssignedIdentities?: Record<string, { principalId: string | null; clientId: string | null }>;
}

/**
 * The `identity` property of a GET response; undefined when the resource has no identity, as in ARM.
 * `isLive` says whether an attached identity's principal still exists; ARM shows null ids for one that
 * does not (aad-pod-identity README, Known Issues).
 */
export function identityToJson(
  block: IdentityBlock,
  tenantId: string,
  isLive: (u: AttachedUserIdentity) => boolean = () => true,
): IdentityJson | undefined {
  if (block.type === "None") return undefined;
  const json: IdentityJson = { type: block.type };
  if (hasSystem(block.type) && block.system) {
    json.principalId = block.system.principalId;
    json.tenantId = tenantId;
  }
  if (hasUser(block.type)) {
    json.userAssignedIdentities = {};
    for (const v of block.userAssigned.values()) {
      json.userAssignedIdentities[armEchoedId(v.id)] = isLive(v)
        ? { principalId: v.principalId, clientId: v.clientId }
        : { principalId: null, clientId: null };
    }
  }
  return json;
}

export function cloneIdentity(block: IdentityBlock): IdentityBlock {
  const copy: IdentityBlock = { type: block.type, userAssigned: new Map(block.userAssigned) };
  if (block.system) copy.system = { ...block.system };
  return copy;
}
