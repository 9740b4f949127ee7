// @kubernetes/client-node, for legacy kubeconfig auth-provider plugins; loaded only through lib/lazy_import.ts.
export { KubeConfig } from "npm:@kubernetes/client-node@2.0.1";
