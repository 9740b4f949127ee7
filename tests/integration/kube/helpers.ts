// Shared pieces of the kube integration tests: a client for a kubeconfig, polling, per-object handler
// journals, and a TCP relay that can cut the network between a client and the apiserver.

import { loadKubeConnection } from "../../../lib/kube/config.ts";
import { KubeClient } from "../../../lib/kube/rest.ts";
import type { EventHandler } from "../../../lib/kube/store.ts";
import type { KubeObject } from "../../../lib/kube/types.ts";

export async function clientFor(kubeconfigPath: string, server?: string): Promise<KubeClient> {
  const conn = await loadKubeConnection({ kubeconfigPath });
  return new KubeClient(server ? { ...conn, server } : conn, { userAgent: "kube-integration-test" });
}

export async function waitUntil(
  what: string,
  check: () => boolean | Promise<boolean>,
  timeoutMs = 20_000,
  intervalMs = 50,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (await check()) return;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

interface JournalEntry {
  type: "add" | "update" | "delete";
  uid: string;
  rv: string;
  finalStateUnknown?: boolean;
}

/** Records every handler call per object uid, in order, and asserts updates chain (old rv = previous rv). */
export function journal<T extends KubeObject>(): {
  byUid: Map<string, JournalEntry[]>;
  names: Map<string, string>;
  handler: EventHandler<T>;
  errors: string[];
} {
  const byUid = new Map<string, JournalEntry[]>();
  const names = new Map<string, string>();
  const errors: string[] = [];
  const push = (o: T, e: Omit<JournalEntry, "uid" | "rv">) => {
    const uid = o.metadata.uid!;
    names.set(uid, o.metadata.name!);
    const list = byUid.get(uid) ?? [];
    byUid.set(uid, list);
    list.push({ ...e, uid, rv: o.metadata.resourceVersion! });
  };
  return {
    byUid,
    names,
    errors,
    handler: {
      onAdd: (o) => push(o, { type: "add" }),
      onUpdate: (old, o) => {
        const prev = byUid.get(o.metadata.uid!)?.at(-1);
        if (!prev || prev.rv !== old.metadata.resourceVersion) {
          errors.push(
            `update of ${o.metadata.name} from rv ${old.metadata.resourceVersion}, last seen ${prev?.rv}`,
          );
        }
        push(o, { type: "update" });
      },
      onDelete: (o, info) => push(o, { type: "delete", finalStateUnknown: info.finalStateUnknown }),
    },
  };
}

/** uid -> resourceVersion of a fresh LIST, the truth a cache must equal. */
export function snapshot(items: KubeObject[]): Map<string, string> {
  return new Map(
    items.map((
      o,
    ) => [`${o.metadata.namespace}/${o.metadata.name}/${o.metadata.uid}`, o.metadata.resourceVersion!]),
  );
}

export function sameSnapshot(a: Map<string, string>, b: Map<string, string>): boolean {
  if (a.size !== b.size) return false;
  for (const [k, v] of a) if (b.get(k) !== v) return false;
  return true;
}

/** A small deterministic PRNG so a failing run can be replayed. */
export function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A TCP relay in front of the apiserver (TLS passes through untouched, byte order kept), for fault tests:
 * - `cut()` drops every connection and refuses new ones until `restore()`: a network partition;
 * - `delayMs` holds every server->client chunk that long (requests arrive at once, answers late: a slow path
 *   where the write a request makes is done long before the client hears of it); settable at any time;
 * - `dropRequests()` discards client->server bytes from then on (no undo: the TLS streams cannot recover);
 * - `connections` counts the connections accepted, to see whether a client called at all.
 */
export class TcpRelay {
  delayMs: number;
  connections = 0;
  #listener: Deno.TcpListener;
  #target: { hostname: string; port: number };
  #conns = new Set<Deno.Conn>();
  #cut = false;
  #dropRequests = false;
  #accepting: Promise<void>;
  #pipes = new Set<Promise<void>>();

  constructor(targetUrl: string, opts: { delayMs?: number } = {}) {
    const u = new URL(targetUrl);
    this.#target = { hostname: u.hostname, port: Number(u.port) };
    this.delayMs = opts.delayMs ?? 0;
    this.#listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#accepting = this.#accept();
  }

  get url(): string {
    return `https://127.0.0.1:${this.#listener.addr.port}`;
  }

  dropRequests(): void {
    this.#dropRequests = true;
  }

  async #accept(): Promise<void> {
    for await (const conn of this.#listener) {
      if (this.#cut) {
        conn.close();
        continue;
      }
      this.connections++;
      const p = this.#relay(conn);
      this.#pipes.add(p);
      p.finally(() => this.#pipes.delete(p));
    }
  }

  async #relay(client: Deno.Conn): Promise<void> {
    let server: Deno.Conn;
    try {
      server = await Deno.connect(this.#target);
    } catch {
      client.close();
      return;
    }
    this.#conns.add(client);
    this.#conns.add(server);
    const closeBoth = () => {
      for (const c of [client, server]) {
        if (this.#conns.delete(c)) {
          try {
            c.close();
          } catch { /* closed */ }
        }
      }
    };
    const writeAll = async (to: Deno.Conn, data: Uint8Array) => {
      let off = 0;
      while (off < data.length) off += await to.write(data.subarray(off));
    };
    const upstream = async () => {
      const buf = new Uint8Array(64 * 1024);
      try {
        while (true) {
          const n = await client.read(buf);
          if (n === null) break;
          if (!this.#dropRequests) await writeAll(server, buf.subarray(0, n));
        }
      } catch { /* either side closed */ }
      closeBoth();
    };
    // Chunks are queued with their due time and written in order by one writer, so a delay never reorders.
    const downstream = async () => {
      const queue: { due: number; data: Uint8Array | null }[] = [];
      let wake: (() => void) | undefined;
      const writer = (async () => {
        try {
          while (true) {
            while (queue.length === 0) await new Promise<void>((r) => wake = r);
            const { due, data } = queue.shift()!;
            const wait = due - performance.now();
            if (wait > 0) await new Promise((r) => setTimeout(r, wait));
            if (data === null) break;
            await writeAll(client, data);
          }
        } catch { /* either side closed */ }
        closeBoth();
      })();
      const buf = new Uint8Array(64 * 1024);
      try {
        while (true) {
          const n = await server.read(buf);
          queue.push({ due: performance.now() + this.delayMs, data: n === null ? null : buf.slice(0, n) });
          wake?.();
          if (n === null) break;
        }
      } catch {
        queue.push({ due: 0, data: null });
        wake?.();
      }
      await writer;
    };
    await Promise.all([upstream(), downstream()]);
  }

  cut(): void {
    this.#cut = true;
    for (const c of this.#conns) {
      try {
        c.close();
      } catch { /* closed */ }
    }
    this.#conns.clear();
  }

  restore(): void {
    this.#cut = false;
  }

  async close(): Promise<void> {
    this.cut();
    this.#listener.close();
    await this.#accepting.catch(() => {});
    await Promise.all([...this.#pipes]);
  }
}

/**
 * Checks a handler journal against the truth (a fresh LIST): every live object's journal starts with an
 * add and ends at its current resourceVersion; every other object's journal ends with its one delete.
 */
export function journalProblems(byUid: Map<string, JournalEntry[]>, truth: KubeObject[]): string[] {
  const problems: string[] = [];
  const live = new Map(truth.map((o) => [o.metadata.uid!, o]));
  for (const o of truth) {
    if (!byUid.has(o.metadata.uid!)) problems.push(`never delivered: ${o.metadata.name}`);
  }
  for (const [uid, entries] of byUid) {
    if (entries[0]?.type !== "add") problems.push(`${uid}: first call is ${entries[0]?.type}`);
    const deletes = entries.filter((e) => e.type === "delete").length;
    const last = entries.at(-1)!;
    const obj = live.get(uid);
    if (obj) {
      if (deletes > 0) problems.push(`${obj.metadata.name}: live but deleted in journal`);
      if (last.rv !== obj.metadata.resourceVersion) {
        problems.push(
          `${obj.metadata.name}: journal ends at rv ${last.rv}, server has ${obj.metadata.resourceVersion}`,
        );
      }
    } else if (deletes !== 1 || last.type !== "delete") {
      problems.push(`${uid}: gone from the server but journal is ${entries.map((e) => e.type).join(",")}`);
    }
  }
  return problems;
}

/** Deletes a key straight from etcd's v3 JSON gateway, behind the apiserver's back. */
export async function etcdDelete(etcdEndpoint: string, key: string): Promise<number> {
  const r = await fetch(`${etcdEndpoint}/v3/kv/deleterange`, {
    method: "POST",
    body: JSON.stringify({ key: btoa(key) }),
  });
  const body = await r.json() as { deleted?: string };
  return Number(body.deleted ?? 0);
}
