// Kubeconfigs as the usual tools write them, and edge cases, for the differential tests of
// lib/kube/simple_yaml.ts. Certificates and tokens are fakes of realistic length and alphabet.

const pem = (what: string) =>
  btoa(
    `-----BEGIN ${what}-----\n${
      "MIIDBTCCAe2gAwIBAgIIQ0x8t7Zq5nwwDQYJKoZIhvcNAQELBQAw".repeat(16)
    }\n-----END ${what}-----\n`,
  );
const CA = pem("CERTIFICATE");
const CERT = pem("CERTIFICATE");
const KEY = pem("RSA PRIVATE KEY");
const JWT =
  "eyJhbGciOiJSUzI1NiIsImtpZCI6Ik1rX2V4In0.eyJhdWQiOlsiaHR0cHM6Ly9rdWJlcm5ldGVzIl19.c2lnbmF0dXJlLV9f";

/** One kubeconfig text; `declines` says the simple parser must leave it to yaml, and why. */
interface CorpusEntry {
  name: string;
  text: string;
  declines?: string;
}

const lines = (...l: string[]) => l.join("\n") + "\n";

/** `kubectl config view --raw` of a kubeadm cluster: keys sorted, a sequence at its key's indentation. */
const kubectl = lines(
  "apiVersion: v1",
  "clusters:",
  "- cluster:",
  `    certificate-authority-data: ${CA}`,
  "    server: https://192.168.1.10:6443",
  "  name: kubernetes",
  "contexts:",
  "- context:",
  "    cluster: kubernetes",
  "    user: kubernetes-admin",
  "  name: kubernetes-admin@kubernetes",
  "current-context: kubernetes-admin@kubernetes",
  "kind: Config",
  "preferences: {}",
  "users:",
  "- name: kubernetes-admin",
  "  user:",
  `    client-certificate-data: ${CERT}`,
  `    client-key-data: ${KEY}`,
);

const kind = kubectl.replaceAll("https://192.168.1.10:6443", "https://127.0.0.1:41235")
  .replaceAll("kubernetes-admin@kubernetes", "kind-kind").replaceAll("kubernetes-admin", "kind-kind")
  .replaceAll("name: kubernetes", "name: kind-kind").replaceAll("cluster: kubernetes", "cluster: kind-kind");

const minikube = lines(
  "apiVersion: v1",
  "clusters:",
  "- cluster:",
  "    certificate-authority: /home/dev/.minikube/ca.crt",
  "    extensions:",
  "    - extension:",
  "        last-update: Fri, 04 Dec 2026 18:02:11 UTC",
  "        provider: minikube.sigs.k8s.io",
  "        version: v1.34.0",
  "      name: cluster_info",
  "    server: https://192.168.49.2:8443",
  "  name: minikube",
  "contexts:",
  "- context:",
  "    cluster: minikube",
  "    extensions:",
  "    - extension:",
  "        last-update: Fri, 04 Dec 2026 18:02:11 UTC",
  "        provider: minikube.sigs.k8s.io",
  "        version: v1.34.0",
  "      name: context_info",
  "    namespace: default",
  "    user: minikube",
  "  name: minikube",
  "current-context: minikube",
  "kind: Config",
  "preferences: {}",
  "users:",
  "- name: minikube",
  "  user:",
  "    client-certificate: /home/dev/.minikube/profiles/minikube/client.crt",
  "    client-key: /home/dev/.minikube/profiles/minikube/client.key",
);

const k3s = kubectl.replaceAll("https://192.168.1.10:6443", "https://127.0.0.1:6443")
  .replaceAll("kubernetes-admin@kubernetes", "default").replaceAll("kubernetes-admin", "default")
  .replaceAll(": kubernetes", ": default");

/** `az aks get-credentials --admin` of a cluster with local accounts: a client certificate and a token. */
const aksAdmin = lines(
  "apiVersion: v1",
  "clusters:",
  "- cluster:",
  `    certificate-authority-data: ${CA}`,
  "    server: https://myaks-dns-1a2b3c4d.hcp.westeurope.azmk8s.io:443",
  "  name: myAKS",
  "contexts:",
  "- context:",
  "    cluster: myAKS",
  "    user: clusterAdmin_myRG_myAKS",
  "  name: myAKS-admin",
  "current-context: myAKS-admin",
  "kind: Config",
  "preferences: {}",
  "users:",
  "- name: clusterAdmin_myRG_myAKS",
  "  user:",
  `    client-certificate-data: ${CERT}`,
  `    client-key-data: ${KEY}`,
  "    token: 0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0",
);

const kubeloginUser = [
  "- name: clusterUser_myRG_myAKS",
  "  user:",
  "    exec:",
  "      apiVersion: client.authentication.k8s.io/v1beta1",
  "      args:",
  "      - get-token",
  "      - --environment",
  "      - AzurePublicCloud",
  "      - --server-id",
  "      - 6dae42f8-4368-4678-94ff-3960e28e3630",
  "      - --client-id",
  "      - 80faf920-1908-4b52-b5ef-a8e7bedfc67a",
  "      - --tenant-id",
  "      - 72f988bf-86f1-41af-91ab-2d7cd011db47",
  "      - --login",
  "      - devicecode",
  "      command: kubelogin",
  "      env: null",
];

/** An Entra ID cluster's user with kubelogin's exec (login azurecli), without az's install hint. */
const aksKubelogin = lines(
  ...aksAdmin.split("\n").slice(0, 15).map((l) =>
    l.replace("clusterAdmin", "clusterUser").replace("-admin", "")
  ),
  ...kubeloginUser.map((l) => l.replace("devicecode", "azurecli")),
  "      interactiveMode: IfAvailable",
  "      provideClusterInfo: false",
);

/** The same as az writes it, with kubelogin's install hint as a block scalar. */
const aksKubeloginHint = lines(
  ...aksAdmin.split("\n").slice(0, 15),
  ...kubeloginUser,
  "      installHint: |2",
  "",
  "        kubelogin is not installed which is required to connect to AAD enabled cluster.",
  "",
  "        To learn more, please go to https://aka.ms/aks/kubelogin",
  "      interactiveMode: IfAvailable",
  "      provideClusterInfo: false",
);

const eksArn = "arn:aws:eks:us-west-2:111122223333:cluster/my-cluster";
/** `aws eks update-kubeconfig --profile dev`: ARNs (colons) as names, exec of aws with an env list. */
const eks = lines(
  "apiVersion: v1",
  "clusters:",
  "- cluster:",
  `    certificate-authority-data: ${CA}`,
  "    server: https://ABCDEF0123456789ABCDEF0123456789.gr7.us-west-2.eks.amazonaws.com",
  `  name: ${eksArn}`,
  "contexts:",
  "- context:",
  `    cluster: ${eksArn}`,
  `    user: ${eksArn}`,
  `  name: ${eksArn}`,
  `current-context: ${eksArn}`,
  "kind: Config",
  "preferences: {}",
  "users:",
  `- name: ${eksArn}`,
  "  user:",
  "    exec:",
  "      apiVersion: client.authentication.k8s.io/v1beta1",
  "      args:",
  "      - --region",
  "      - us-west-2",
  "      - eks",
  "      - get-token",
  "      - --cluster-name",
  "      - my-cluster",
  "      - --output",
  "      - json",
  "      command: aws",
  "      env:",
  "      - name: AWS_PROFILE",
  "        value: dev",
);

/** eksctl's variant: more indented sequences, interactiveMode, provideClusterInfo. */
const eksctl = lines(
  "apiVersion: v1",
  "clusters:",
  "  - cluster:",
  `      certificate-authority-data: ${CA}`,
  "      server: https://ABCDEF0123456789.yl4.eu-west-1.eks.amazonaws.com",
  "    name: my-cluster.eu-west-1.eksctl.io",
  "contexts:",
  "  - context:",
  "      cluster: my-cluster.eu-west-1.eksctl.io",
  "      user: admin@my-cluster.eu-west-1.eksctl.io",
  "    name: admin@my-cluster.eu-west-1.eksctl.io",
  "current-context: admin@my-cluster.eu-west-1.eksctl.io",
  "kind: Config",
  "preferences: {}",
  "users:",
  "  - name: admin@my-cluster.eu-west-1.eksctl.io",
  "    user:",
  "      exec:",
  "        apiVersion: client.authentication.k8s.io/v1beta1",
  "        args:",
  "          - eks",
  "          - get-token",
  "          - --output",
  "          - json",
  "          - --cluster-name",
  "          - my-cluster",
  "          - --region",
  "          - eu-west-1",
  "        command: aws",
  "        env:",
  "          - name: AWS_STS_REGIONAL_ENDPOINTS",
  "            value: regional",
  "        provideClusterInfo: false",
  "        interactiveMode: IfAvailable",
);

const gkeHead = [
  "apiVersion: v1",
  "clusters:",
  "- cluster:",
  `    certificate-authority-data: ${CA}`,
  "    server: https://34.118.12.7",
  "  name: gke_my-project_us-central1-a_my-cluster",
  "contexts:",
  "- context:",
  "    cluster: gke_my-project_us-central1-a_my-cluster",
  "    user: gke_my-project_us-central1-a_my-cluster",
  "  name: gke_my-project_us-central1-a_my-cluster",
  "current-context: gke_my-project_us-central1-a_my-cluster",
  "kind: Config",
  "preferences: {}",
  "users:",
  "- name: gke_my-project_us-central1-a_my-cluster",
  "  user:",
  "    exec:",
  "      apiVersion: client.authentication.k8s.io/v1beta1",
  "      command: gke-gcloud-auth-plugin",
];

/** `gcloud container clusters get-credentials`: its install hint wraps onto a second line (a multi-line plain). */
const gke = lines(
  ...gkeHead,
  "      installHint: Install gke-gcloud-auth-plugin for use with kubectl by following",
  "        https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin",
  "      provideClusterInfo: true",
);

/** The same with the hint on one line (as kubectl writes it back, e.g. after `kubectl config use-context`). */
const gkeOneLine = lines(
  ...gkeHead,
  "      installHint: Install gke-gcloud-auth-plugin for use with kubectl by following https://cloud.google.com/kubernetes-engine/docs/how-to/cluster-access-for-kubectl#install_plugin",
  "      provideClusterInfo: true",
);

/** The legacy gcp auth-provider: quoted values that would otherwise be flow mappings or timestamps. */
const gcpAuthProvider = lines(
  ...gkeHead.slice(0, 17),
  "    auth-provider:",
  "      config:",
  "        access-token: ya29.a0AfB_byC1-ExampleToken_Value",
  "        cmd-args: config config-helper --format=json",
  "        cmd-path: /usr/lib/google-cloud-sdk/bin/gcloud",
  '        expiry: "2026-12-04T19:00:00Z"',
  "        expiry-key: '{.credential.token_expiry}'",
  "        token-key: '{.credential.access_token}'",
  "      name: gcp",
);

/** The legacy azure auth-provider (what aad-pod-identity's era of AKS wrote): a quoted "1". */
const azureAuthProvider = lines(
  ...aksAdmin.split("\n").slice(0, 16),
  "  user:",
  "    auth-provider:",
  "      config:",
  "        apiserver-id: 6dae42f8-4368-4678-94ff-3960e28e3630",
  "        client-id: 80faf920-1908-4b52-b5ef-a8e7bedfc67a",
  '        config-mode: "1"',
  "        environment: AzurePublicCloud",
  "        tenant-id: 72f988bf-86f1-41af-91ab-2d7cd011db47",
  "      name: azure",
);

/** Rancher writes double-quoted values. */
const rancher = lines(
  "apiVersion: v1",
  "kind: Config",
  "clusters:",
  '- name: "prod"',
  "  cluster:",
  '    server: "https://rancher.example.com/k8s/clusters/c-m-4x7kqz2b"',
  "",
  "users:",
  '- name: "prod"',
  "  user:",
  '    token: "kubeconfig-user-abc12:d4k9z7qkcfvz5mbx7tkp8cfw6xgqq2w9pk4crg6f8t5wthsz4z2jlm"',
  "",
  "",
  "contexts:",
  '- name: "prod"',
  "  context:",
  '    user: "prod"',
  '    cluster: "prod"',
  "",
  'current-context: "prod"',
);

/** `oc login`: names with slashes and colons, a namespace. */
const openshift = lines(
  "apiVersion: v1",
  "clusters:",
  "- cluster:",
  "    insecure-skip-tls-verify: true",
  "    server: https://api.crc.testing:6443",
  "  name: api-crc-testing:6443",
  "contexts:",
  "- context:",
  "    cluster: api-crc-testing:6443",
  "    namespace: default",
  "    user: kubeadmin/api-crc-testing:6443",
  "  name: default/api-crc-testing:6443/kubeadmin",
  "current-context: default/api-crc-testing:6443/kubeadmin",
  "kind: Config",
  "preferences: {}",
  "users:",
  "- name: kubeadmin/api-crc-testing:6443",
  "  user:",
  "    token: sha256~Xq1c9bK3kE7vVv2vYHq8pJkqTz4mU6YwQ0bNnLrS1a0",
);

/** scripts/sandbox/control_plane.ts: a flow mapping context. */
const sandboxAdmin = lines(
  "apiVersion: v1",
  "kind: Config",
  "clusters:",
  "- name: sandbox",
  "  cluster:",
  "    server: https://127.0.0.1:36443",
  `    certificate-authority-data: ${CA}`,
  "users:",
  "- name: sandbox-admin",
  "  user:",
  `    client-certificate-data: ${CERT}`,
  `    client-key-data: ${KEY}`,
  "contexts:",
  "- name: sandbox",
  "  context: {cluster: sandbox, user: sandbox-admin, namespace: default}",
  "current-context: sandbox",
);

/** scripts/sandbox/service_accounts.ts: everything in flow collections, URLs and a JWT as flow scalars. */
const sandboxServiceAccount = lines(
  "apiVersion: v1",
  "kind: Config",
  `clusters: [{name: c, cluster: {server: https://127.0.0.1:36443, certificate-authority-data: ${CA}}}]`,
  `users: [{name: aad-pod-identity-nmi, user: {token: ${JWT}}}]`,
  "contexts: [{name: c, context: {cluster: c, user: aad-pod-identity-nmi, namespace: kube-system}}]",
  "current-context: c",
);

/** Fields kubectl knows that the tools above leave out. */
const manyFields = lines(
  "apiVersion: v1",
  "kind: Config",
  "clusters:",
  "- name: edge",
  "  cluster:",
  "    server: https://[fd00::10]:6443/prefix/",
  "    tls-server-name: kubernetes.default.svc",
  "    proxy-url: socks5://127.0.0.1:1080",
  "    disable-compression: true",
  "    certificate-authority: ../pki/ca.crt",
  "users:",
  "- name: robot",
  "  user:",
  "    tokenFile: /var/run/secrets/tokens/robot",
  "    as: system:serviceaccount:ops:robot",
  "    as-groups:",
  "    - system:masters",
  "    - ops",
  "    as-uid: 1234",
  "    as-user-extra:",
  "      reason:",
  "      - change-42",
  "- name: basic",
  "  user: {username: admin, password: 'p@ss: w0rd #1'}",
  "contexts:",
  "- name: edge",
  "  context:",
  "    cluster: edge",
  "    user: robot",
  "    namespace: kube-system",
  "current-context: edge",
  "preferences:",
  "  colors: false",
  "extensions: []",
);

/** Quoting and escapes: everything a careful writer might quote. */
const quoting = lines(
  "---",
  '"apiVersion": "v1"',
  "'kind': 'Config'",
  "current-context: 'it''s'",
  "contexts:",
  '- name: "it\'s"',
  "  context: {\"cluster\": \"a\\tb\", 'user': 'x'}",
  "users:",
  '- name: "esc \\" \\\\ \\/ \\n \\r \\0 \\a \\b \\e \\f \\v \\N \\_ \\L \\P \\ end"',
  '  user: {token: "\\x41\\u00e9\\u20ac\\U0001F600", password: "# not a comment", username: "a: b"}',
  '"key with spaces": "value with trailing spaces   "',
  "'': empty key",
  '"#": hash',
  "url: 'https://example.com/?a=b&c=d#frag'",
  "empty-single: ''",
  'empty-double: ""',
  "unicode: grüße, 日本語 🚀",
  "apostrophe: don't",
  'inner-quotes: say "hi"',
  "backslash: C:\\Users\\dev",
);

/** Comments in every place a comment may go, blank lines, trailing spaces. */
const comments = lines(
  "# written by hand",
  "",
  "apiVersion: v1 # the only version   ",
  "kind: Config   ",
  "   # a comment indented oddly",
  "clusters: # list follows",
  "# between key and sequence",
  "- name: a # the name",
  "  # inside the item",
  "  cluster: # nested mapping follows",
  "    server: https://a.example:443#not-a-comment",
  "    # last line of the item",
  "",
  "contexts:",
  "- # an item that starts on the next line",
  "  name: a",
  "  context: {cluster: a, user: a} # flow, then comment",
  "users: [] #empty",
  "current-context: a",
  "#trailing",
);

/** Plain scalars of every core-schema type, and ones that only look like them. */
const scalars = lines(
  "nulls: [~, null, Null, NULL]",
  "not-nulls: [nUll, none, nil, '~', 'null']",
  "empty:",
  "bools: [true, True, TRUE, false, False, FALSE]",
  "not-bools: [yes, no, on, off, y, n, tRue, 'true']",
  "ints: [0, -0, +12, 007, 0o17, 0x1F, 0xff, 123456789012345678901234567890]",
  "not-ints: [0b101, 1_000, 0o8, 0xg, 0X1F, 0O17, 1,2]",
  "floats: [1.5, -.5, +2., 1e3, 1.5E-3, .5e+2, -1e-0, .inf, -.Inf, +.INF, .nan, .NaN, .NAN]",
  "not-floats: [1.2.3, e3, 1e, .e3, -.nan, +.nan, inf, NaN, 1_0.5]",
  "strings: [-a, ?b, :c, a-b, a:b, a?b, 'a,b', -1a, 12:30, 2026-12-04, 1.2.3.4]",
  "port: 6443",
  "version: 1.34",
  "semver: v1.34.2",
  "timestamp: 2026-12-04T18:00:00Z",
  "ip: 10.0.0.1",
  "negative: -42",
  "block-plain-with-indicators: a,b]c}d{e[f",
  "block-plain-colon: a:b :c",
  "dash-value: -x",
  "nested-flow: [a, [b, [c, {d: [e, {f: g}]}]], {}, [], {h: {}}]",
  "spaces-in-flow: [  a b  ,   c   ]",
);

/** The same kubeconfig with Windows line ends and a byte order mark, as Notepad saves it. */
const crlfBom = "\ufeff" + sandboxAdmin.replaceAll("\n", "\r\n");

/** Unusual but valid indentation: the whole document indented, sequences deeper than keys, wide dashes. */
const indentation = lines(
  "  apiVersion: v1",
  "  clusters:",
  "      -   name: a",
  "          cluster:",
  "                server: https://a:1",
  "      -",
  "          name: b",
  "      -",
  "      - [x]",
  "      - 'y'",
  "  contexts:",
  "  - - a",
);

/** `kubectl config view -o json`: JSON is YAML too, but spread over lines. */
const jsonKubeconfig = JSON.stringify(
  {
    kind: "Config",
    apiVersion: "v1",
    clusters: [{ name: "a", cluster: { server: "https://a:6443", "certificate-authority-data": CA } }],
    users: [{ name: "a", user: { token: JWT } }],
    contexts: [{ name: "a", context: { cluster: "a", user: "a" } }],
    "current-context": "a",
  },
  null,
  4,
);

export const CORPUS: CorpusEntry[] = [
  { name: "kubectl config view --raw (kubeadm)", text: kubectl },
  { name: "kind", text: kind },
  { name: "minikube (extensions, paths)", text: minikube },
  { name: "k3s", text: k3s },
  { name: "az aks get-credentials --admin (certificate + token)", text: aksAdmin },
  { name: "az aks, Entra ID user with kubelogin exec (args, env: null), no installHint", text: aksKubelogin },
  {
    name: "az aks get-credentials (Entra ID, installHint block scalar)",
    text: aksKubeloginHint,
    declines: "block scalar",
  },
  { name: "aws eks update-kubeconfig (ARN names, exec aws, env)", text: eks },
  { name: "eksctl (indented sequences)", text: eksctl },
  { name: "gcloud get-credentials (installHint wrapped)", text: gke, declines: "multi-line plain scalar" },
  { name: "gke-gcloud-auth-plugin, hint on one line", text: gkeOneLine },
  { name: "gcp auth-provider (quoted values)", text: gcpAuthProvider },
  { name: "azure auth-provider", text: azureAuthProvider },
  { name: "rancher (double-quoted, blank lines)", text: rancher },
  { name: "oc login", text: openshift },
  { name: "sandbox admin (flow mapping context)", text: sandboxAdmin },
  { name: "sandbox service account (all flow)", text: sandboxServiceAccount },
  { name: "other kubectl fields", text: manyFields },
  { name: "quoting and escapes, leading ---", text: quoting },
  { name: "comments everywhere", text: comments },
  { name: "core schema scalars", text: scalars },
  { name: "CRLF and BOM", text: crlfBom },
  { name: "unusual indentation", text: indentation.replace("  - - a\n", "  - a\n") },
  { name: "empty file", text: "" },
  { name: "trailing commas in flow collections", text: "a: [b, c, ]\nd: {e: f,}\n" },
  { name: "only comments and ---", text: "# nothing yet\n---\n# still nothing\n" },
  // What the subset leaves to yaml. Each is valid YAML unless it says otherwise.
  { name: "compact nested sequence", text: indentation, declines: "- - a" },
  { name: "anchor and alias", text: "a: &x {b: 1}\nc: *x\n", declines: "anchors" },
  { name: "tag", text: "a: !!str 1\n", declines: "tags" },
  { name: "folded block scalar", text: "a: >-\n  folded\n  text\nb: 1\n", declines: "block scalar" },
  { name: "multi-line double-quoted", text: 'a: "one\n  two"\n', declines: "multi-line quoted" },
  { name: "multi-line single-quoted", text: "a: 'one\n\n  two'\n", declines: "multi-line quoted" },
  { name: "multi-line flow", text: "a: [b,\n  c]\n", declines: "multi-line flow" },
  { name: "JSON kubeconfig (kubectl config view -o json)", text: jsonKubeconfig, declines: "JSON" },
  { name: "root scalar", text: "just text\n", declines: "not a collection" },
  { name: "document end marker", text: "a: 1\n...\n", declines: "..." },
  { name: "second document (yaml throws)", text: "a: 1\n---\nb: 2\n", declines: "two documents" },
  { name: "two document start markers (yaml throws)", text: "---\n---\na: 1\n", declines: "two documents" },
  { name: "directive", text: "%YAML 1.2\n---\na: 1\n", declines: "%" },
  { name: "tab indentation (yaml throws)", text: "a:\n\tb: 1\n", declines: "tab" },
  { name: "tab after colon", text: "a:\tb\n", declines: "tab" },
  { name: "complex key", text: "? a\n: b\n", declines: "?" },
  { name: "merge key", text: "base: {a: 1}\nc:\n  <<: {b: 2}\n", declines: "<<" },
  { name: "duplicate key (yaml throws)", text: "a: 1\nb: 2\na: 3\n", declines: "duplicate" },
  { name: "duplicate key in flow (yaml throws)", text: "a: {b: 1, b: 2}\n", declines: "duplicate" },
  { name: "non-string key", text: "1: a\n'1': b\n", declines: "non-string key" },
  { name: "lone CR line ends (yaml throws)", text: "a: 1\rb: 2\r", declines: "CR" },
  { name: "invalid escape (yaml throws)", text: 'a: "\\q"\n', declines: "escape" },
  { name: "empty flow entry (yaml throws)", text: "a: [b, , c]\n", declines: "empty flow entry" },
  { name: "flow key without value", text: "a: {b}\n", declines: "flow key without value" },
  { name: "nested mapping on one line (yaml throws)", text: "a: b: c\n", declines: "a: b: c" },
  { name: "comment not after a space (yaml throws)", text: "a: 'b'#c\n", declines: "comment" },
  { name: "long key (yaml throws)", text: `"${"\\x41".repeat(300)}": v\n`, declines: "key over 1024" },
  { name: "long plain value in a sequence", text: `a:\n- ${"b".repeat(3000)}\n` },
  { name: "bad indentation (yaml throws)", text: "a:\n  b: 1\n c: 2\n", declines: "indentation" },
];
