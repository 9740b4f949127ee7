// The original refused to run on kubenet nodes: there a pod with CAP_NET_RAW can ARP-spoof another pod's IP
// and so obtain its token (CVE-2021-1677). Same check, same override flag; the kubelet settings file is read
// as the original read it (a missing file means "not kubenet").

export function mentionsKubenet(kubeletSettings: string): boolean {
  return /--network-plugin[= ]kubenet\b/.test(kubeletSettings);
}

export async function isKubenetNode(kubeletConfigPath: string): Promise<boolean> {
  try {
    return mentionsKubenet(await Deno.readTextFile(kubeletConfigPath));
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}
