// A REST client that others wrote: fhir-kit-client creates a Patient on
// courier's embedded FHIR store, reads it, updates it, searches for it by
// identifier, reads its history and deletes it, printing what it saw as
// JSON for the test to check.
// Usage: node fhirkit_rest.js BASE_URL
const Client = require("fhir-kit-client");

async function main() {
  const [baseUrl] = process.argv.slice(2);
  const client = new Client({ baseUrl });
  const patient = {
    resourceType: "Patient",
    identifier: [{ system: "urn:oid:1.2.36.146.595.217.0.1", value: "MRN-4242" }],
    name: [{ family: "Lovelace", given: ["Ada"] }],
    gender: "female",
  };
  const created = await client.create({ resourceType: "Patient", body: patient });
  const read = await client.read({ resourceType: "Patient", id: created.id });
  read.birthDate = "1815-12-10";
  const updated = await client.update({ resourceType: "Patient", id: created.id, body: read });
  const found = await client.search({
    resourceType: "Patient",
    searchParams: { identifier: "urn:oid:1.2.36.146.595.217.0.1|MRN-4242" },
  });
  const history = await client.history({ resourceType: "Patient", id: created.id });
  await client.delete({ resourceType: "Patient", id: created.id });
  let gone = null;
  try {
    await client.read({ resourceType: "Patient", id: created.id });
  } catch (error) {
    gone = error.response ? error.response.status : String(error);
  }
  console.log(JSON.stringify({
    created: { id: created.id, version: created.meta.versionId },
    read: read.name[0].family,
    updated: { version: updated.meta.versionId, birthDate: updated.birthDate },
    found: { total: found.total, ids: (found.entry || []).map((e) => e.resource.id) },
    history: history.entry.map((e) => e.resource.meta.versionId),
    gone,
  }));
}

main().catch((error) => {
  console.error(String(error), error.response ? JSON.stringify(error.response.data) : "");
  process.exit(1);
});
