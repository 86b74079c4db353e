// Re-runs a recorded battle (JSON lines: a header, then {tick, inputs}) with the SDK's
// `demo` simulation and prints "TICK DIGEST" after every frame (decimal, exact).
// Used by tests/gamebackend/play/test_determinism.py.
import { readFileSync } from "node:fs";

import { DEMO, proto } from "./sdk.mjs";

const [, ...frames] = readFileSync(process.argv[2], "utf8").trim().split("\n").map(proto.parseJson);
let state = DEMO.initial();
const out = [];
for (const frame of frames) {
  state = DEMO.step(state, frame.tick, frame.inputs);
  out.push(`${frame.tick} ${DEMO.digest(state)}`);
}
process.stdout.write(`${out.join("\n")}\n`);
