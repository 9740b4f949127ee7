// The identity PATCH bodies that move a VM / scale set from what ARM reports to what MIC wants (pure).
// As the original's SetUserIdentities (docs/upstream.md, "## MIC assignment algorithm"; docs/protocols.md,
// "## ARM identity assignment"): only the delta is sent (`{}` adds, `null` removes), ids compare
// case-insensitively and each is sent once, the type follows the resulting set (None / SystemAssigned when
// the last user identity goes), and no body carries more than 150 ids.
// Fixed here: an entry ARM still lists for a deleted-and-recreated identity (null clientId/principalId) is
// removed first and then added again, which is the only way to make it usable.

const MAX_IDS_PER_PATCH = 150;

type ArmIdentityType = "None" | "SystemAssigned" | "UserAssigned" | "SystemAssigned, UserAssigned";

export interface CurrentIdentity {
  type: string | undefined;
  /**
   * id -> whether ARM still resolves it (false: the entry shows null clientId/principalId), and the client
   * id ARM reports for it.
   */
  userAssigned: { id: string; resolved: boolean; clientId?: string }[];
}

export interface IdentityPatchBody {
  type: ArmIdentityType;
  userAssignedIdentities?: Record<string, Record<string, never> | null>;
}

interface IdentityChange {
  /** Bodies to send in order; empty when ARM already matches. */
  bodies: IdentityPatchBody[];
  /** Ids (as asked) that were already present, so need no call to count as assigned. */
  alreadyPresent: string[];
  /** Ids (as asked) that this change actually adds. */
  adding: string[];
  /** Ids (as ARM spells them) that this change removes. */
  removing: string[];
}

function hasSystemAssigned(type: string | undefined): boolean {
  return (type ?? "").split(",").some((t) => t.trim().toLowerCase() === "systemassigned");
}

function typeFor(system: boolean, anyUser: boolean): ArmIdentityType {
  if (anyUser) return system ? "SystemAssigned, UserAssigned" : "UserAssigned";
  return system ? "SystemAssigned" : "None";
}

function chunk<T>(xs: T[], size: number): T[][] {
  const out: T[][] = [];
  for (let i = 0; i < xs.length; i += size) out.push(xs.slice(i, i + size));
  return out;
}

/** Case-insensitive de-duplication, keeping the first spelling. */
export function uniqueIds(ids: Iterable<string>): string[] {
  const seen = new Map<string, string>();
  for (const id of ids) if (id && !seen.has(id.toLowerCase())) seen.set(id.toLowerCase(), id);
  return [...seen.values()];
}

/**
 * Bodies that add `add` and remove `remove` (an id in both is kept: adds win, as upstream). Adds go before
 * removes, so no intermediate state is empty while the final one is not.
 */
export function identityChange(
  current: CurrentIdentity,
  add: Iterable<string>,
  remove: Iterable<string>,
  maxPerPatch = MAX_IDS_PER_PATCH,
): IdentityChange {
  const system = hasSystemAssigned(current.type);
  const present = new Map(current.userAssigned.map((u) => [u.id.toLowerCase(), u]));
  const adds = uniqueIds(add);
  const addKeys = new Set(adds.map((a) => a.toLowerCase()));
  const alreadyPresent = adds.filter((a) => present.get(a.toLowerCase())?.resolved);
  const stale = adds.filter((a) => present.has(a.toLowerCase()) && !present.get(a.toLowerCase())!.resolved);
  const adding = adds.filter((a) => !present.get(a.toLowerCase())?.resolved);
  const removing = uniqueIds(remove)
    .filter((r) => !addKeys.has(r.toLowerCase()) && present.has(r.toLowerCase()))
    .map((r) => present.get(r.toLowerCase())!.id);

  const bodies: IdentityPatchBody[] = [];
  const remaining = new Set(present.keys());
  const removeBodies = (ids: string[]) => {
    for (const part of chunk(ids, maxPerPatch)) {
      for (const id of part) remaining.delete(id.toLowerCase());
      if (remaining.size === 0) {
        // The last user identity goes: the type says so and no list may be sent (Compute's 400 otherwise).
        bodies.push({ type: typeFor(system, false) });
      } else {
        bodies.push({
          type: typeFor(system, true),
          userAssignedIdentities: Object.fromEntries(part.map((id) => [id, null])),
        });
      }
    }
  };
  // Stale entries are dropped first (ARM keeps them across delete + recreate until removed).
  removeBodies(stale.map((s) => present.get(s.toLowerCase())!.id));
  for (const part of chunk(adding, maxPerPatch)) {
    for (const id of part) remaining.add(id.toLowerCase());
    bodies.push({
      type: typeFor(system, true),
      userAssignedIdentities: Object.fromEntries(part.map((id) => [id, {}])),
    });
  }
  removeBodies(removing);
  return { bodies, alreadyPresent, adding, removing };
}
