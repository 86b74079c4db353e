// Prints the wire contract as the JavaScript SDK mirrors it (proto.js), as JSON, for
// tests/gamebackend/play/test_js_mirror.py to compare with the Python schemas.
import { proto } from "./sdk.mjs";

const constants = {};
for (const name of [
  "JSON_SUBPROTOCOL", "MAX_ID_LENGTH", "MAX_TICK_RATE", "DEFAULT_TICK_RATE", "MAX_PLAYERS_LIMIT",
  "DEFAULT_MAX_PLAYERS", "MAX_INPUT_DELAY", "DEFAULT_INPUT_DELAY", "ROOM_HISTORY",
  "MAX_INPUT_AHEAD", "KEYS_MAX", "MAX_CHAT_CHARS", "MAX_SIM_NAME",
]) {
  constants[name] = proto[name];
}
console.log(
  JSON.stringify({
    client: proto.CLIENT_MESSAGES,
    server: proto.SERVER_MESSAGES,
    clientBase: proto.CLIENT_BASE_FIELDS,
    roomCreate: proto.ROOM_CREATE_FIELDS,
    closeCodes: proto.CloseCode,
    errorCodes: Object.values(proto.ErrorCode),
    latePolicies: proto.LATE_POLICIES,
    roomIdPattern: proto.ROOM_ID_PATTERN.source,
    digestMax: String(proto.DIGEST_MAX),
    int64Max: String(proto.INT64_MAX),
    constants,
  }),
);
