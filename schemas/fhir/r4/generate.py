#!/usr/bin/env python3
"""Generates courier's compact FHIR R4 type metadata (types.json).

Source: the official FHIR R4 (4.0.1) StructureDefinitions, `Bundle-types.json`
(profiles-types) and `Bundle-resources.json` (profiles-resources), as shipped in
the npm package `hl7.fhir.r4.examples@4.0.1` (CC0). To regenerate:

    npm pack hl7.fhir.r4.examples@4.0.1
    tar xzf hl7.fhir.r4.examples-4.0.1.tgz
    python3 schemas/fhir/r4/generate.py package/ > schemas/fhir/r4/types.json

The output keeps what the codecs, the validator and FHIRPath need: for every
type its kind, base type and elements in definition order (name, types, min,
max, whether it is an XML attribute, Reference targets). Nested
BackboneElements become types of their own named by path (`Patient.contact`);
a contentReference (`#Questionnaire.item`) points at that named type.
Only the Python standard library is used.
"""
import json
import os
import sys

SYSTEM_PREFIX = "http://hl7.org/fhirpath/System."
FHIR_TYPE_EXT = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


def type_code(t):
    """The FHIR type code of an ElementDefinition.type entry.

    R4 writes the types of `id`, `Extension.url` and primitive values as
    FHIRPath system types with the FHIR type in an extension."""
    code = t["code"]
    if code.startswith(SYSTEM_PREFIX):
        for ext in t.get("extension", []):
            if ext["url"] == FHIR_TYPE_EXT:
                return ext["valueUrl"]
        return code[len(SYSTEM_PREFIX):].lower()
    return code


def short(url):
    return url[len(SD_PREFIX):] if url.startswith(SD_PREFIX) else url


def load(folder):
    sds = {}
    for name in ("Bundle-types.json", "Bundle-resources.json"):
        with open(os.path.join(folder, name), encoding="utf-8") as f:
            bundle = json.load(f)
        for entry in bundle["entry"]:
            res = entry["resource"]
            if res["resourceType"] == "StructureDefinition":
                sds[res["id"]] = res
    return sds


def element_types(sds):
    out = {}
    for sd_id, sd in sorted(sds.items()):
        if sd["kind"] == "logical" or sd.get("derivation") == "constraint":
            continue  # logical models and profiles are not wire types
        kind = {"primitive-type": "primitive", "complex-type": "complex",
                "resource": "resource"}[sd["kind"]]
        base = short(sd["baseDefinition"]) if "baseDefinition" in sd else None
        elements = sd["snapshot"]["element"]
        paths = [e["path"] for e in elements]
        has_children = {p.rsplit(".", 1)[0] for p in paths if "." in p}
        types = {}

        def new_type(name, k):
            entry = {"kind": k}
            if k != "backbone" and base:
                entry["base"] = base
            if sd.get("abstract"):
                entry["abstract"] = True
            entry["elements"] = []
            types[name] = entry
            return entry

        new_type(sd["type"], kind)
        for el in elements[1:]:
            path = el["path"]
            parent, name = path.rsplit(".", 1)
            if kind == "primitive" and name == "value":
                continue  # the value is the primitive itself, not a child
            owner = types.get(parent)
            if owner is None:
                raise SystemExit(f"{sd_id}: {path} has no parent type")
            item = {"name": name}
            if name.endswith("[x]"):
                item["name"] = name[:-3]
                item["choice"] = True
            if "contentReference" in el:
                item["types"] = [el["contentReference"].lstrip("#")]
            elif path in has_children:
                item["types"] = [path]
                new_type(path, "backbone")
            elif kind == "resource" and name == "id" and parent == sd["type"]:
                # R4's snapshots type a resource's id as System.String with
                # fhir-type "string"; the resource definitions say "id", and
                # FHIRPath (contained.id is id) and validation follow them.
                item["types"] = ["id"]
            else:
                item["types"] = [type_code(t) for t in el.get("type", [])]
                targets = [short(p) for t in el.get("type", [])
                           for p in t.get("targetProfile", [])
                           if t["code"] in ("Reference", "canonical")]
                if targets:
                    item["targets"] = targets
            item["min"] = el["min"]
            item["max"] = -1 if el["max"] == "*" else int(el["max"])
            if "xmlAttr" in el.get("representation", []):
                item["xmlAttr"] = True
            if el.get("isSummary"):
                item["summary"] = True
            if el.get("isModifier"):
                item["modifier"] = True
            owner["elements"].append(item)
        out.update(types)
    return out


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: generate.py PACKAGE_FOLDER > types.json")
    sds = load(sys.argv[1])
    doc = {
        "generator": "schemas/fhir/r4/generate.py",
        "source": "npm hl7.fhir.r4.examples@4.0.1 (CC0): Bundle-types.json, Bundle-resources.json",
        "fhirVersion": "4.0.1",
        "types": element_types(sds),
    }
    json.dump(doc, sys.stdout, separators=(",", ":"), sort_keys=False)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
