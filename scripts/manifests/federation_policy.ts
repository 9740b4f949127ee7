// Least privilege for federated mode: NMI's service account may create service-account tokens (RBAC
// `create` on `serviceaccounts/token`), which alone would let a compromised NMI mint any token for any
// service account. This ValidatingAdmissionPolicy (admissionregistration.k8s.io/v1, GA since 1.30) narrows
// what NMI may ask for to what federated mode needs: exactly the audience api://AzureADTokenExchange, bound
// to a Pod (so the token dies with the pod), for at most one hour.

const TOKEN_EXCHANGE_AUDIENCE = "api://AzureADTokenExchange";
const MAX_TOKEN_SECONDS = 3600;

interface FederationPolicyOptions {
  /** Namespace and name of NMI's service account. */
  nmiNamespace: string;
  nmiServiceAccount: string;
  /** Name of the policy and its binding (cluster-scoped). */
  name?: string;
}

export function federationPolicyObjects(o: FederationPolicyOptions): Record<string, unknown>[] {
  const name = o.name ?? "aad-pod-identity-nmi-token-requests";
  const user = `system:serviceaccount:${o.nmiNamespace}:${o.nmiServiceAccount}`;
  return [
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicy",
      metadata: { name, labels: { "app.kubernetes.io/part-of": "aad-pod-identity" } },
      spec: {
        failurePolicy: "Fail",
        matchConstraints: {
          resourceRules: [{
            apiGroups: [""],
            apiVersions: ["v1"],
            operations: ["CREATE"],
            resources: ["serviceaccounts/token"],
          }],
        },
        matchConditions: [{ name: "nmi-only", expression: `request.userInfo.username == '${user}'` }],
        validations: [
          {
            expression:
              `object.spec.audiences.size() == 1 && object.spec.audiences[0] == '${TOKEN_EXCHANGE_AUDIENCE}'`,
            message:
              `NMI may request service-account tokens only for the audience ${TOKEN_EXCHANGE_AUDIENCE}`,
            reason: "Forbidden",
          },
          {
            expression: "has(object.spec.boundObjectRef) && object.spec.boundObjectRef.kind == 'Pod' && " +
              "has(object.spec.boundObjectRef.uid) && object.spec.boundObjectRef.uid != ''",
            message: "NMI may request only service-account tokens bound to a Pod (with its uid)",
            reason: "Forbidden",
          },
          {
            expression:
              `has(object.spec.expirationSeconds) && object.spec.expirationSeconds <= ${MAX_TOKEN_SECONDS}`,
            message: `NMI may request service-account tokens for at most ${MAX_TOKEN_SECONDS} seconds`,
            reason: "Forbidden",
          },
        ],
      },
    },
    {
      apiVersion: "admissionregistration.k8s.io/v1",
      kind: "ValidatingAdmissionPolicyBinding",
      metadata: { name, labels: { "app.kubernetes.io/part-of": "aad-pod-identity" } },
      spec: { policyName: name, validationActions: ["Deny"] },
    },
  ];
}

/** The RBAC rule NMI needs in federated mode (added to its ClusterRole). */
export const NMI_TOKEN_REQUEST_RULE = {
  apiGroups: [""],
  resources: ["serviceaccounts/token"],
  verbs: ["create"],
};
