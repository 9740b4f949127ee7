// The resources (audiences) the emulated tenant knows. Azure AD refuses a token for any other resource with
// AADSTS500011, and IMDS passes that refusal on; a registry lets tests ask for what a real tenant serves.

import type { AadErrorInput } from "./aad_error.ts";
import { PUBLIC_ARM_AUDIENCES } from "./arm_auth.ts";

/** First-party resources every Azure tenant has a service principal for. */
export const WELL_KNOWN_RESOURCES = [
  ...PUBLIC_ARM_AUDIENCES,
  "https://vault.azure.net",
  "https://storage.azure.com",
  "https://graph.microsoft.com",
  "https://graph.windows.net",
  "https://database.windows.net",
  "https://ossrdbms-aad.database.windows.net",
  "https://monitor.azure.com",
  "https://servicebus.azure.net",
  "https://eventhubs.azure.net",
  "https://cognitiveservices.azure.com",
  // The AKS AAD server application, for kubelogin-style cluster tokens.
  "6dae42f8-4368-4678-94ff-3960e28e3630",
];

/** App ID URIs compare case-insensitively and with or without a trailing slash. */
export function resourceKey(resource: string): string {
  return resource.trim().replace(/\/+$/, "").toLowerCase();
}

export class ResourceRegistry {
  #known = new Set<string>();

  /**
   * `strict: false` accepts every resource (the emulator's behaviour before the registry existed).
   * `dynamic` names resources only known once servers listen (the emulator's own ARM endpoint) or that
   * live elsewhere (client ids of registered applications).
   */
  constructor(
    initial: string[],
    readonly strict: boolean,
    private readonly dynamic: (resource: string) => boolean = () => false,
  ) {
    for (const r of initial) this.register(r);
  }

  register(resource: string): void {
    if (resource.trim() === "") throw new TypeError("a resource must be a non-empty string");
    this.#known.add(resourceKey(resource));
  }

  has(resource: string): boolean {
    if (!this.strict) return true;
    const key = resourceKey(resource);
    if (this.#known.has(key)) return true;
    const appId = /^api:\/\/([^/]+)$/i.exec(resource.trim())?.[1];
    return this.dynamic(resource) || (appId !== undefined && this.dynamic(appId));
  }
}

/** Azure AD's answer for a resource it has no service principal for. */
export function resourceNotFound(resource: string, tenant: string): AadErrorInput {
  return {
    status: 400,
    error: "invalid_resource",
    code: 500011,
    description:
      `The resource principal named ${resource} was not found in the tenant named ${tenant}. This can ` +
      "happen if the application has not been installed by the administrator of the tenant or consented to by " +
      "any user in the tenant. You might have sent your authentication request to the wrong tenant.",
  };
}
