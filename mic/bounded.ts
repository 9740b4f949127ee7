// A bounded fan-out: the Kubernetes writes of a cycle and of a job go out at most N at a time.

/** Runs `fn` over `items` with at most `limit` in flight. */
export async function bounded<T>(items: T[], limit: number, fn: (t: T) => Promise<void>): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
}
