import assert from "node:assert/strict";
import { brokenCitations, headingsOf } from "../../../scripts/check_doc_refs.ts";

const docs = new Map([[
  "upstream",
  headingsOf("# Title\n\n## iptables rules\ntext\n## Metrics\n### Not a section\n"),
]]);
const broken = (text: string) => brokenCitations(text, docs).map((p) => `${p.line} ${p.what}`);

Deno.test("check_doc_refs: citations of docs/ files and their ## sections must resolve", () => {
  assert.deepEqual(broken('// see docs/upstream.md, "## iptables rules" and "## Metrics"'), []);
  assert.deepEqual(broken('// docs/upstream.md "Metrics"; docs/upstream.md: the CRD section'), []);
  assert.deepEqual(broken('\n// docs/upstream.md, "## Not a section"'), [
    '2 cites docs/upstream.md section "Not a section", not a heading there',
  ]);
  assert.deepEqual(broken("// docs/missing.md"), ["1 cites docs/missing.md, which does not exist"]);
});

Deno.test("check_doc_refs: the reference notes outside the repository may not be cited", () => {
  assert.deepEqual(
    broken("// (upstream.md section 4)\n// protocols-and-peers.md C.1\n// ../shared/DESIGN.md"),
    [
      "1 cites upstream.md, which is not in the repository",
      "2 cites protocols-and-peers.md, which is not in the repository",
      "3 cites ../shared/, which is not in the repository",
    ],
  );
  assert.deepEqual(broken("// docs/upstream.md"), []);
});
