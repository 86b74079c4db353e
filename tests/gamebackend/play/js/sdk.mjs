// The SDK under test, from where the node serves it (gamebackend/play/static/gameclient/).
export * from "../../../../gamebackend/play/static/gameclient/index.js";
export * as stream from "../../../../gamebackend/play/static/gameclient/stream.js";
export * as sims from "../../../../gamebackend/play/static/gameclient/sims.js";

/** The recorded demo battle (tests/fixtures/demo_replay.jsonl) as a file URL. */
export const DEMO_REPLAY = new URL("../../../fixtures/demo_replay.jsonl", import.meta.url);
