// The parts of an Azure AD error answer (AADSTS code, OAuth error, description), shared by the token
// endpoint (aad.ts) and the resource registry (resources.ts) that produces one of them.

export interface AadErrorInput {
  status: number;
  error: string;
  /** The AADSTS number, e.g. 500011. */
  code: number;
  description: string;
}
