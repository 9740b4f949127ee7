// yaml, for what lib/kube/simple_yaml.ts declines; loaded only through lib/lazy_import.ts.
export { parse } from "npm:yaml@2.9.1";
