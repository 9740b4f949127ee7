// The build's version, printed by `--version` in the original's shape (version/version.go v1.8.17:
// "MIC Version: %s - NMI Version: %s - Commit: %s - Date: %s") so scripts that parse it keep working.

export const MIC_VERSION = "1.9.0-deno";
const NMI_VERSION = "0.1.0";

interface BuildInfo {
  mic: string;
  nmi: string;
  commit: string;
  date: string;
}

/** Commit and date come from the image build (AAD_POD_IDENTITY_GIT_COMMIT / _BUILD_DATE), else "unknown". */
export function buildInfo(env: (name: string) => string | undefined): BuildInfo {
  return {
    mic: MIC_VERSION,
    nmi: NMI_VERSION,
    commit: env("AAD_POD_IDENTITY_GIT_COMMIT") || "unknown",
    date: env("AAD_POD_IDENTITY_BUILD_DATE") || "unknown",
  };
}

export function versionLine(v: BuildInfo): string {
  return `MIC Version: ${v.mic} - NMI Version: ${v.nmi} - Commit: ${v.commit} - Date: ${v.date}`;
}

/**
 * The original's User-Agent (version/version.go): `aad-pod-identity/<MIC|NMI>/<version>/<commit>/<date>`, then
 * `--custom-user-agent` after a space; sent to ARM, Azure AD and the apiserver alike.
 */
export function userAgent(component: "MIC" | "NMI", v: BuildInfo, custom: string): string {
  const version = component === "MIC" ? v.mic : v.nmi;
  const base = `aad-pod-identity/${component}/${version}/${v.commit}/${v.date}`;
  return custom ? `${base} ${custom}` : base;
}
