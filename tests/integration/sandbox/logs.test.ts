// The process sandbox's logs outlive `down`: they are written beside the state directory, not in it, so a
// user can read what MIC, NMI and the emulator said after the sandbox is gone; `logs` shows them while up.

import assert from "node:assert/strict";
import { sandbox } from "../../support/sandbox_cli.ts";

Deno.test("sandbox: down removes the state directory and keeps the run's logs (up and down print where)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "aad-sbx-logs-" });
  try {
    const upped = await sandbox(dir, ["up", "--loopback"]);
    assert.equal(upped.code, 0, upped.stderr);
    const logDir = /logs: (\S+) \(kept after down\)/.exec(upped.stderr)?.[1];
    assert.ok(logDir, upped.stderr);
    assert.ok(logDir.startsWith(`${dir}-logs/`), logDir);

    const listed = await sandbox(dir, ["logs"]);
    assert.equal(listed.code, 0, listed.stderr);
    assert.match(listed.stdout, /^\s+mic\.log$/m);
    const mic = await sandbox(dir, ["logs", "mic"]);
    assert.match(mic.stdout, /leading:/);
    const unknown = await sandbox(dir, ["logs", "app"]);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /no log app: the process mode's logs are mic, nmi, azure/);

    const downed = await sandbox(dir, ["down"]);
    assert.equal(downed.code, 0, downed.stderr);
    assert.match(downed.stderr, new RegExp(`logs of the run kept in ${logDir}`));
    await assert.rejects(Deno.stat(dir));
    assert.match(await Deno.readTextFile(`${logDir}/mic.log`), /leading:/);
    for (const name of ["nmi.log", "azure.log", "kube-apiserver.log"]) {
      assert.ok((await Deno.readTextFile(`${logDir}/${name}`)).length > 0, name);
    }
    const after = await sandbox(dir, ["logs"]);
    assert.equal(after.code, 1);
    assert.match(after.stderr, new RegExp(`no sandbox is up; the logs of past runs are under ${dir}-logs`));
  } finally {
    await sandbox(dir, ["down"]);
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    await Deno.remove(`${dir}-logs`, { recursive: true }).catch(() => {});
  }
});
