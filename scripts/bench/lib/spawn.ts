// A Deno child process whose output is collected line by line, with the port it reports once listening.

const ROOT = new URL("../../../", import.meta.url).pathname;

export interface Logged {
  child: Deno.ChildProcess;
  port: Promise<number>;
  lines: string[];
  stop(): Promise<void>;
}

export function spawnLogged(args: string[], listenPattern: RegExp): Logged {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines: string[] = [];
  const port = new Promise<number>((resolve, reject) => {
    const pump = async (s: ReadableStream<Uint8Array>) => {
      let buf = "";
      for await (const c of s.pipeThrough(new TextDecoderStream())) {
        buf += c;
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          lines.push(line);
          const m = listenPattern.exec(line);
          if (m) resolve(Number(m[1]));
        }
      }
    };
    pump(child.stdout);
    pump(child.stderr);
    child.status.then((s) => reject(new Error(`exited ${s.code}:\n${lines.join("\n")}`)));
  });
  port.catch(() => {});
  const stop = async () => {
    try {
      child.kill("SIGTERM");
    } catch { /* already gone */ }
    await child.status;
  };
  return { child, port, lines, stop };
}
