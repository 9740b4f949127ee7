// Paginated LIST, shared by KubeClient.listAll and the reflector, after client-go's ListPager: follow
// `continue` tokens page by page, and when a token has expired (410: etcd compacted past the snapshot the
// pages come from) fall back to one unpaginated LIST, since a list cannot be stitched together from pages
// of different snapshots. Items are appended one at a time: spreading a page into push() passes every item
// as a call argument and throws RangeError on large lists.

import { KubeApiError } from "./api_error.ts";
import type { ListOptions } from "./request_options.ts";
import type { KubeList, KubeObject } from "./types.ts";

interface PagedList<T extends KubeObject> {
  items: T[];
  /** The resourceVersion of the snapshot the items come from (for a watch to resume from). */
  resourceVersion: string | undefined;
  /** The last page's answer, for its apiVersion and kind. */
  last: KubeList<T>;
  /** LIST requests made, the fallback included. */
  requests: number;
  /** True when an expired continue token forced the unpaginated fallback. */
  fullListFallback: boolean;
}

/** Appends without spreading: `push(...items)` would pass every item as an argument. */
function appendAll<T>(to: T[], items: readonly T[]): void {
  for (let i = 0; i < items.length; i++) to.push(items[i]);
}

/** Fetches one page: `client.list` (JSON, whole objects), `client.listProjected`, or a ListerWatcher's list. */
type PageFetcher<T extends KubeObject> = (
  opts: ListOptions,
  signal?: AbortSignal,
) => Promise<KubeList<T>>;

/**
 * Every item across pages of `opts.limit` (one request when no limit). `opts.continue` is ignored: a
 * listing always starts at the first page. The first page's resourceVersion (and match) choose the
 * snapshot; later pages carry only the continue token, which names that snapshot (the apiserver refuses a
 * resourceVersion next to a continue token, so client-go's pager drops it the same way).
 */
export async function listPages<T extends KubeObject>(
  fetchPage: PageFetcher<T>,
  opts: ListOptions = {},
  signal?: AbortSignal,
): Promise<PagedList<T>> {
  const items: T[] = [];
  let cont: string | undefined;
  let requests = 0;
  let page: KubeList<T>;
  do {
    requests++;
    try {
      page = await fetchPage(
        cont
          ? { ...opts, continue: cont, resourceVersion: undefined, resourceVersionMatch: undefined }
          : { ...opts, continue: undefined },
        signal,
      );
    } catch (e) {
      if (!(cont && e instanceof KubeApiError && e.isGone)) throw e;
      // client-go's pager does the same: the pages so far are from a snapshot that no longer exists.
      requests++;
      const full = await fetchPage({ ...opts, limit: undefined, continue: undefined }, signal);
      return {
        items: full.items,
        resourceVersion: full.metadata.resourceVersion,
        last: full,
        requests,
        fullListFallback: true,
      };
    }
    appendAll(items, page.items);
    cont = page.metadata.continue || undefined;
  } while (cont);
  return {
    items,
    resourceVersion: page.metadata.resourceVersion,
    last: page,
    requests,
    fullListFallback: false,
  };
}
