// ARM error bodies: `{"error":{"code","message","target"?,"details"?}}`, the shape every ARM client parses.

export interface ArmErrorDetail {
  code: string;
  message: string;
  target?: string;
}

export interface ArmError extends ArmErrorDetail {
  status: number;
  details?: ArmErrorDetail[];
}

export function armError(status: number, code: string, message: string, target?: string): ArmError {
  return target === undefined ? { status, code, message } : { status, code, message, target };
}

export function armErrorBody(err: ArmError): { error: ArmErrorDetail & { details?: ArmErrorDetail[] } } {
  const { status: _status, ...error } = err;
  return { error };
}

export function invalidParameter(message: string, target: string): ArmError {
  return armError(400, "InvalidParameter", message, target);
}

export function invalidRequestContent(detail: string): ArmError {
  return armError(
    400,
    "InvalidRequestContent",
    `The request content was invalid and could not be deserialized: '${detail}'.`,
  );
}

export function resourceNotFound(type: string, name: string, resourceGroup: string): ArmError {
  return armError(
    404,
    "ResourceNotFound",
    `The Resource '${type}/${name}' under resource group '${resourceGroup}' was not found. ` +
      "For more details please go to https://aka.ms/ARMResourceNotFoundFix",
  );
}

export function resourceGroupNotFound(resourceGroup: string): ArmError {
  return armError(404, "ResourceGroupNotFound", `Resource group '${resourceGroup}' could not be found.`);
}

export function subscriptionNotFound(subscriptionId: string): ArmError {
  return armError(404, "SubscriptionNotFound", `The subscription '${subscriptionId}' could not be found.`);
}

/** 403 for identities the caller may not assign (no `.../assign/action` on them), as ARM words it. */
export function linkedAuthorizationFailed(
  clientId: string,
  objectId: string,
  action: string,
  scope: string,
  linkedIds: string[],
): ArmError {
  return armError(
    403,
    "LinkedAuthorizationFailed",
    `The client '${clientId}' with object id '${objectId}' has permission to perform action '${action}' on scope ` +
      `'${scope}'; however, it does not have permission to perform action ` +
      `'Microsoft.ManagedIdentity/userAssignedIdentities/assign/action' on the linked scope(s) ` +
      `'${linkedIds.join(",")}' or the linked scope(s) are invalid.`,
  );
}

/** 400 for identities that do not exist although the caller could assign them; the RP's nested wording. */
export function failedIdentityOperation(resourceId: string, missingIds: string[]): ArmError {
  return identityOperationFailed(
    resourceId,
    missingIds.map((id) => `Resource '${id}' was not found.`).join(" "),
  );
}

/** 403 when ARM's RBAC check denies the action on the resource itself (no role with `<type>/write`). */
export function authorizationFailed(objectId: string, action: string, scope: string): ArmError {
  return armError(
    403,
    "AuthorizationFailed",
    `The client '${objectId}' with object id '${objectId}' does not have authorization to perform action ` +
      `'${action}' over scope '${scope}' or the scope is invalid. If access was recently granted, please refresh ` +
      "your credentials.",
  );
}

/** The identity resource provider's answer wrapped in Compute's FailedIdentityOperation, as clients see it. */
function identityOperationFailed(resourceId: string, innerMessage: string): ArmError {
  const inner = JSON.stringify({ error: { code: "BadRequest", message: innerMessage } });
  return armError(
    400,
    "FailedIdentityOperation",
    `Identity operation for resource '${resourceId}' failed with error 'Failed to perform resource identity ` +
      `operation. Status: 'BadRequest'. Response: '${inner}'.'.`,
  );
}

/** More user-assigned identities in one request than the identity RP accepts (Azure/bicep#16559). */
export function tooManyIdentities(resourceId: string, count: number, limit: number): ArmError {
  return identityOperationFailed(
    resourceId,
    `User Assigned Identities Number '${count}' Assign exceed limit '${limit}' in one request.`,
  );
}
