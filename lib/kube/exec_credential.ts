// client-go's exec credential plugins (client.authentication.k8s.io/v1 and v1beta1 ExecCredential): run the
// configured command, take status.token from its stdout, and keep it until status.expirationTimestamp (or,
// without one, until the apiserver answers 401). Concurrent callers share one run of the plugin.

export interface ExecConfig {
  apiVersion?: string;
  command: string;
  args?: string[];
  env?: { name: string; value: string }[] | null;
  installHint?: string;
}

const EXEC_API_VERSIONS = ["client.authentication.k8s.io/v1", "client.authentication.k8s.io/v1beta1"];

export class ExecCredentialError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ExecCredentialError";
  }
}

interface ExecCredentialStatus {
  token?: string;
  expirationTimestamp?: string;
  clientCertificateData?: string;
}

/** Parses the plugin's stdout; throws ExecCredentialError naming what is wrong (never the token). */
export function parseExecCredential(
  stdout: string,
  apiVersion: string,
): { token: string; expiresAt: number | undefined } {
  let doc: { apiVersion?: string; kind?: string; status?: ExecCredentialStatus };
  try {
    doc = JSON.parse(stdout);
  } catch {
    throw new ExecCredentialError("the plugin's output is not JSON");
  }
  if (doc?.kind !== "ExecCredential") {
    throw new ExecCredentialError("the plugin's output is not an ExecCredential");
  }
  if (doc.apiVersion !== apiVersion) {
    throw new ExecCredentialError(
      `the plugin answered ${doc.apiVersion}, the kubeconfig asks for ${apiVersion}`,
    );
  }
  const token = doc.status?.token;
  if (typeof token !== "string" || token === "") {
    throw new ExecCredentialError(
      doc.status?.clientCertificateData
        ? "client certificates from exec plugins are not supported; the plugin must return a token"
        : "the plugin returned no status.token",
    );
  }
  const exp = doc.status?.expirationTimestamp;
  let expiresAt: number | undefined;
  if (exp !== undefined) {
    expiresAt = Date.parse(exp);
    if (Number.isNaN(expiresAt)) {
      throw new ExecCredentialError(`bad status.expirationTimestamp ${JSON.stringify(exp)}`);
    }
  }
  return { token, expiresAt };
}

export class ExecCredentialSource {
  readonly config: ExecConfig;
  #cached: { token: string; expiresAt: number | undefined } | undefined;
  #running: Promise<string> | undefined;
  /** How many times the plugin ran (for logs and tests). */
  runs = 0;

  constructor(config: ExecConfig) {
    if (!config.command) throw new ExecCredentialError("exec: no command");
    const apiVersion = config.apiVersion ?? "";
    if (!EXEC_API_VERSIONS.includes(apiVersion)) {
      throw new ExecCredentialError(
        `exec apiVersion ${JSON.stringify(apiVersion)} is not supported (use ${
          EXEC_API_VERSIONS.join(" or ")
        })`,
      );
    }
    this.config = config;
  }

  /** The current token, running the plugin when there is none or it has expired (expiry is wall clock). */
  token(): Promise<string> {
    const c = this.#cached;
    if (c && (c.expiresAt === undefined || Date.now() < c.expiresAt)) return Promise.resolve(c.token);
    this.#running ??= this.#run().finally(() => this.#running = undefined);
    return this.#running;
  }

  /** Forgets the token (the apiserver refused it), so the next token() runs the plugin again. */
  invalidate(): void {
    this.#cached = undefined;
  }

  async #run(): Promise<string> {
    const { command, args = [], env, apiVersion } = this.config;
    const execInfo = { apiVersion, kind: "ExecCredential", spec: { interactive: false } };
    this.runs++;
    let out: Deno.CommandOutput;
    try {
      out = await new Deno.Command(command, {
        args,
        env: {
          ...Object.fromEntries((env ?? []).map((e) => [e.name, e.value])),
          KUBERNETES_EXEC_INFO: JSON.stringify(execInfo),
        },
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
    } catch (e) {
      const hint = this.config.installHint ? ` (${this.config.installHint.trim().split("\n")[0]})` : "";
      throw new ExecCredentialError(`exec plugin ${command} cannot run: ${(e as Error).message}${hint}`);
    }
    if (!out.success) {
      const err = new TextDecoder().decode(out.stderr).trim().split("\n")[0]?.slice(0, 200) ?? "";
      throw new ExecCredentialError(`exec plugin ${command} exited with ${out.code}${err ? `: ${err}` : ""}`);
    }
    try {
      this.#cached = parseExecCredential(new TextDecoder().decode(out.stdout), apiVersion!);
    } catch (e) {
      throw new ExecCredentialError(`exec plugin ${command}: ${(e as Error).message}`);
    }
    return this.#cached.token;
  }
}
