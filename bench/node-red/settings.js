// Node-RED settings for the benchmark: port from NODE_RED_PORT, no editor,
// flows from this folder, nothing written to the user's home.
module.exports = {
  uiPort: Number(process.env.NODE_RED_PORT),
  uiHost: "127.0.0.1",
  flowFile: __dirname + "/flows.json",
  userDir: process.env.NODE_RED_USER_DIR,
  httpAdminRoot: false,
  logging: { console: { level: "warn" } },
};
