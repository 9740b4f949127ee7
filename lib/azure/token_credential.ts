// The shape of a token source MIC's ARM client asks: the same as @azure/core-auth's TokenCredential, so an
// SDK credential still fits (the emulator's tests pass one), without loading the SDK in MIC.

export interface AccessToken {
  token: string;
  /** Epoch ms. */
  expiresOnTimestamp: number;
}

export interface GetTokenOptions {
  abortSignal?: AbortSignal;
}

export interface TokenCredential {
  getToken(scopes: string | string[], options?: GetTokenOptions): Promise<AccessToken | null>;
}

/** A token request that failed: the endpoint's status and error code, never the token or a secret. */
export class TokenRequestError extends Error {
  override name = "TokenRequestError";
  /** The answer's Retry-After, when it had one. */
  retryAfterMs?: number;
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}
