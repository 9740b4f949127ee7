// Per-route fault injection: tests make one route fail, stall or drop its connection a number of times.

export interface FaultSpec {
  /** Route name, e.g. `vmss.patch`, `aad.token`, `imds.token` (see README.md for the list). */
  route: string;
  /** Answer with this status (and the service's error body) instead of handling the request. */
  status?: number;
  /** Wait this long before answering (or before the injected status / drop). */
  latencyMs?: number;
  /** Close the connection without any response. */
  drop?: boolean;
  /** How many matching requests the fault applies to; unlimited when absent. */
  times?: number;
  /** Retry-After header (seconds) sent with an injected status. */
  retryAfterSeconds?: number;
}

interface ActiveFault {
  id: number;
  spec: FaultSpec;
  left: number;
}

/** Thrown by a handler to make the HTTP layer close the connection without answering. */
export class DroppedConnection extends Error {
  constructor() {
    super("connection dropped by fault injection");
    this.name = "DroppedConnection";
  }
}

export class FaultInjector {
  #next = 1;
  #faults: ActiveFault[] = [];

  /** Adds a fault; returns its id for `clear(id)`. Faults for one route apply in insertion order. */
  inject(spec: FaultSpec): number {
    if (!spec.route) throw new TypeError("a fault needs a route");
    if (spec.status === undefined && spec.latencyMs === undefined && !spec.drop) {
      throw new TypeError("a fault needs status, latencyMs or drop");
    }
    if (spec.status !== undefined && (spec.status < 100 || spec.status > 599)) {
      throw new RangeError(`invalid fault status ${spec.status}`);
    }
    const id = this.#next++;
    this.#faults.push({ id, spec: { ...spec }, left: spec.times ?? Infinity });
    return id;
  }

  /** Removes one fault, or all of them. */
  clear(id?: number): void {
    this.#faults = id === undefined ? [] : this.#faults.filter((f) => f.id !== id);
  }

  /** The fault that applies to this request, consuming one of its `times`. */
  take(route: string): FaultSpec | undefined {
    const f = this.#faults.find((x) => x.spec.route === route && x.left > 0);
    if (!f) return undefined;
    f.left -= 1;
    if (f.left <= 0) this.#faults = this.#faults.filter((x) => x !== f);
    return f.spec;
  }

  /** Faults still armed (for diagnostics). */
  active(): FaultSpec[] {
    return this.#faults.map((f) => ({ ...f.spec }));
  }
}

/** Waits `ms`; settles early when `signal` aborts so a stopping server never waits on an injected delay. */
export function delay(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      resolve();
    };
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
