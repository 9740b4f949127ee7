// Azure clouds by the names azure.json and the original's CLOUD env var use (go-autorest's
// EnvironmentFromName, case-insensitive, with or without the "Cloud" suffix), plus custom clouds from a JSON
// environment file (AZURE_ENVIRONMENT_FILEPATH, the same file go-autorest reads) so a sovereign or
// emulated cloud is reached through the same settings a user sets.

export interface CloudEnvironment {
  name: string;
  /** ARM, e.g. https://management.azure.com/ */
  resourceManagerEndpoint: string;
  /** Azure AD authority host, e.g. https://login.microsoftonline.com/ */
  activeDirectoryEndpoint: string;
  /** The audience ARM tokens are issued for (go-autorest `TokenAudience`/`ResourceManagerEndpoint`). */
  tokenAudience: string;
}

export class CloudConfigError extends Error {
  override name = "CloudConfigError";
}

export const CLOUDS: Record<string, CloudEnvironment> = {
  AzurePublicCloud: {
    name: "AzurePublicCloud",
    resourceManagerEndpoint: "https://management.azure.com/",
    activeDirectoryEndpoint: "https://login.microsoftonline.com/",
    tokenAudience: "https://management.azure.com/",
  },
  AzureChinaCloud: {
    name: "AzureChinaCloud",
    resourceManagerEndpoint: "https://management.chinacloudapi.cn/",
    activeDirectoryEndpoint: "https://login.chinacloudapi.cn/",
    tokenAudience: "https://management.chinacloudapi.cn/",
  },
  AzureUSGovernmentCloud: {
    name: "AzureUSGovernmentCloud",
    resourceManagerEndpoint: "https://management.usgovcloudapi.net/",
    activeDirectoryEndpoint: "https://login.microsoftonline.us/",
    tokenAudience: "https://management.usgovcloudapi.net/",
  },
  // Closed in 2021, but go-autorest still knew the name, so an old azure.json naming it must parse.
  AzureGermanCloud: {
    name: "AzureGermanCloud",
    resourceManagerEndpoint: "https://management.microsoftazure.de/",
    activeDirectoryEndpoint: "https://login.microsoftonline.de/",
    tokenAudience: "https://management.microsoftazure.de/",
  },
};

function withSlash(url: string): string {
  return url.endsWith("/") ? url : `${url}/`;
}

/** go-autorest's environment file: the fields it names in PascalCase or camelCase JSON. */
function parseEnvironmentFile(text: string, source: string): CloudEnvironment {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new CloudConfigError(`${source}: not JSON (${(e as Error).message})`);
  }
  if (typeof raw !== "object" || raw === null) throw new CloudConfigError(`${source}: must be a JSON object`);
  const o = raw as Record<string, unknown>;
  const pick = (...keys: string[]) => {
    for (const k of keys) if (typeof o[k] === "string" && o[k]) return o[k] as string;
    return undefined;
  };
  const arm = pick("resourceManagerEndpoint", "ResourceManagerEndpoint");
  const aad = pick("activeDirectoryEndpoint", "ActiveDirectoryEndpoint");
  if (!arm || !aad) {
    throw new CloudConfigError(`${source}: needs resourceManagerEndpoint and activeDirectoryEndpoint`);
  }
  for (const [field, url] of [["resourceManagerEndpoint", arm], ["activeDirectoryEndpoint", aad]]) {
    if (!URL.canParse(url)) {
      throw new CloudConfigError(`${source}: ${field} ${JSON.stringify(url)} is not a URL`);
    }
  }
  return {
    name: pick("name", "Name") ?? "AzureStackCloud",
    resourceManagerEndpoint: withSlash(arm),
    activeDirectoryEndpoint: withSlash(aad),
    tokenAudience: withSlash(pick("tokenAudience", "TokenAudience") ?? arm),
  };
}

/** go-autorest's other names: "AzureCloud" is what `az cloud list` and many azure.json files write. */
const ALIASES: Record<string, string> = { azure: "AzurePublicCloud" };

function canonical(name: string): string {
  const key = name.trim().toLowerCase().replace(/cloud$/, "");
  return ALIASES[key] ? canonical(ALIASES[key]) : key;
}

/**
 * The cloud for a name ("" means public). `AzureStackCloud` reads the environment file, as go-autorest does;
 * that is how a custom ARM endpoint and authority host (or the emulator) are named.
 */
export function resolveCloud(
  name: string,
  environmentFile?: { path: string; text: string },
): CloudEnvironment {
  const key = canonical(name);
  if (key === "") return CLOUDS.AzurePublicCloud;
  const known = Object.values(CLOUDS).find((c) => canonical(c.name) === key);
  if (known) return known;
  if (key === "azurestack") {
    if (!environmentFile) {
      throw new CloudConfigError("cloud AzureStackCloud needs AZURE_ENVIRONMENT_FILEPATH");
    }
    return parseEnvironmentFile(environmentFile.text, environmentFile.path);
  }
  throw new CloudConfigError(
    `unknown cloud ${JSON.stringify(name)}: use one of ${
      Object.keys(CLOUDS).join(", ")
    }, or AzureStackCloud with AZURE_ENVIRONMENT_FILEPATH`,
  );
}
