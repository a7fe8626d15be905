// A placer that others wrote: fhir-kit-client sends a message Bundle to
// courier's $process-message, synchronously (the client's operation()) or
// asynchronously (POST ...?async=true), and prints what came back as JSON:
// {"ok": true, "body": RESOURCE_OR_EMPTY} or, for an HTTP error,
// {"ok": false, "status": N, "body": OPERATION_OUTCOME}.
// Usage: node fhirkit_placer.js BASE_URL sync|async MESSAGE.json
const fs = require("fs");
const Client = require("fhir-kit-client");

async function main() {
  const [baseUrl, mode, file] = process.argv.slice(2);
  const bundle = JSON.parse(fs.readFileSync(file, "utf8"));
  const client = new Client({ baseUrl });
  const sent = mode === "sync"
    ? client.operation({ name: "process-message", input: bundle })
    : client.request("$process-message?async=true", {
      method: "POST",
      body: JSON.stringify(bundle),
      options: { headers: { "Content-Type": "application/fhir+json" } },
    });
  try {
    const body = await sent;
    console.log(JSON.stringify({ ok: true, body: body || "" }));
  } catch (error) {
    if (!error.response) throw error;
    console.log(JSON.stringify({ ok: false, status: error.response.status, body: error.response.data }));
  }
}

main().catch((error) => {
  console.error(String(error));
  process.exit(1);
});
