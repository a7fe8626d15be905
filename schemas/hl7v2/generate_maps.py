#!/usr/bin/env python3
"""Generates courier's v2 -> FHIR maps from the HL7 V2-to-FHIR IG's tables.

Reads the IG's segment, data type and vocabulary tables (CSV, Apache-2.0,
in shared/conformance/v2-to-fhir) and writes one YAML file per map under
schemas/hl7v2/maps/{segments,datatypes,vocabulary}. Starting from the
segment maps courier uses (SEGMENT_MAPS), it follows the data type and
vocabulary maps they name.

The tables are written for people and are not all computable. A row is
carried over when its FHIR target is a path that exists in FHIR R4 (checked
against schemas/fhir/r4/types.json) and its condition, if any, is one
courier evaluates (VALUED, NOT VALUED, EQUALS, NOT EQUALS, IN, NOT IN,
joined by AND). Every row left out is listed, with why, at the top of the
file it would have gone into, so an analyst can see what is not mapped and
add it by hand.

Usage: generate_maps.py CONFORMANCE_DIR OUTPUT_DIR
"""

import csv
import json
import os
import re
import sys

# The segment maps of the message structures courier converts. MSH is not
# among them: courier builds the MessageHeader and the Bundle's identity
# itself (hl7v2/to_fhir.cpp), since its correlation and deduplication rest
# on them.
SEGMENT_MAPS = [
    "PID[Patient]",
    "PV1[Encounter]",
    "PV2[Encounter]",
    "NK1[RelatedPerson]",
    "AL1[AllergyIntolerance]",
    "ORC[ServiceRequest]",
    "OBR[ServiceRequest]",
    "OBR[DiagnosticReport]",
    "OBX[Observation]",
]

# The message structures whose segment grammar courier checks; ADT_A03
# and ADT_A39 have no table in the IG and are written by hand.
STRUCTURES = ["ADT_A01", "ADT_A02", "ADT_A05", "ADT_A09", "OML_O21", "ORM_O01", "ORU_R01"]

# The resources a value may make of its own (a Practitioner from an XCN).
CREATED_TYPES = {"Practitioner", "Organization", "Location"}

# Data type maps that make a chain of resources rather than one: each
# instance the table numbers ("[1].mode" is the bed, "[2].mode" the room) is
# a resource of its own, part of the next one made through the element
# named here, and the referring element names the first one made (the most
# granular). The chain replaces the table's own partOf rows, which skip
# levels and cannot say "the next one present".
CHAINS = {"PL[Location]": "partOf"}

# Decisions where the IG's table cannot be computed as written.
OVERRIDES = {
    # "IF CX.4 IN the identifier registry" cannot be evaluated; an assigning
    # authority is what tells identifiers apart, so it becomes the system.
    ("CX[Identifier]", 4): [{"from": 4, "to": "system", "map": "HD[uri]"}],
    # XAD.1 spreads a street address over line[1-3] by a SAD table the IG
    # does not have; its first part (the street or mailing address) is the
    # first line.
    ("XAD[Address]", 1): [{"from": 1, "to": "line[1]"}],
    # The order numbers: ORC-2 counts only when OBR-2 is not valued and
    # OBR-2 only when ORC-2 is not, so an order with both (the usual case)
    # would have neither. OBR, merged into ORC's ServiceRequest, gives them
    # whenever it has them; ORC's rows fill in when it has not.
    ("OBR[ServiceRequest]", 2): [
        {"from": 2, "to": "identifier[1]", "map": "EI[Identifier-Extension]"},
        {"from": 2, "to": "identifier[1].type.coding.code", "assign": "PLAC"},
        {"from": 2, "to": "identifier[1].type.coding.system", "assign": "http://terminology.hl7.org/CodeSystem/v2-0203"},
    ],
    ("OBR[ServiceRequest]", 3): [
        {"from": 3, "to": "identifier[2]", "map": "EI[Identifier-Extension]"},
        {"from": 3, "to": "identifier[2].type.coding.code", "assign": "FILL"},
        {"from": 3, "to": "identifier[2].type.coding.system", "assign": "http://terminology.hl7.org/CodeSystem/v2-0203"},
    ],
}

TYPES_JSON = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fhir", "r4", "types.json")


def load_types():
    with open(TYPES_JSON, encoding="utf-8") as f:
        return json.load(f)["types"]


TYPES = load_types()

# The files this run wrote.
written = set()


def csv_rows(path):
    with open(path, encoding="utf-8-sig", newline="") as f:
        return list(csv.reader(f))


def cell(row, index):
    return row[index].strip() if index < len(row) else ""


def find_table(folder, prefix, name):
    # The tables write some names in another case ("PL[location]").
    for file in sorted(os.listdir(folder)):
        if file.lower().startswith((prefix + name + " - ").lower()) and file.endswith(".csv"):
            return os.path.join(folder, file)
    return None


def table_name(folder, prefix, name):
    """The map's name as its table spells it."""
    found = find_table(folder, prefix, name)
    return os.path.basename(found)[len(prefix):].split(" - ")[0] if found else name


# --- FHIR paths -----------------------------------------------------------

STEP = re.compile(r"^(?P<name>[A-Za-z][A-Za-z0-9]*)?(?:\[(?P<index>\d+)\])?$")


def resolve_element(type_name, name):
    """The element `name` of a type (following bases), with its type for a choice."""
    while type_name:
        info = TYPES.get(type_name)
        if info is None:
            return None
        for element in info["elements"]:
            if element["name"] == name:
                return element, element["types"][0]
            if element.get("choice") or len(element["types"]) > 1:
                for t in element["types"]:
                    if name == element["name"] + t[0].upper() + t[1:]:
                        return element, t
        type_name = info.get("base")
    return None


def check_path(context_type, path):
    """None when the path exists under context_type, else why not."""
    if not path:
        return None
    current = context_type
    for step in path.split("."):
        match = STEP.match(step)
        if not match:
            return f"'{step}' is not a FHIR path step"
        if match.group("name") is None:
            continue  # "[2]": another instance of the data type itself
        if current is None:
            return None  # the context type is not known here: checked at run time
        if TYPES.get(current, {}).get("kind") == "primitive":
            return f"it reaches into the {current} value itself (an extension on a primitive)"
        found = resolve_element(current, match.group("name"))
        if found is None:
            return f"{current} has no element '{match.group('name')}'"
        current = found[1]
    return None


def context_type_of(map_name):
    """'XPN[HumanName]' -> 'HumanName'; 'CX[Identifier]' -> 'Identifier'."""
    inner = map_name[map_name.index("[") + 1 : -1]
    base = inner.split("-")[0].split(".")[0]
    if base in TYPES:
        return base
    lowered = base[:1].lower() + base[1:]
    return lowered if lowered in TYPES else None


# --- conditions -------------------------------------------------------------

LITERAL = r'"([^"]*)"'
SUBJECT = r"([A-Z][A-Z0-9]{1,2}[-.]\d+(?:\.\d+)*)"


def parse_condition(text, kind):
    """'IF PID-13.2 IS NOT VALUED AND ...' -> [{at, op, values}], or None."""
    text = " ".join(text.split())
    if not text:
        return []
    if not text.upper().startswith("IF "):
        return None
    clauses = []
    for clause in re.split(r"\s+AND\s+", text[3:]):
        clause = clause.strip()
        if clause.upper().startswith("IF "):
            clause = clause[3:].strip()
        m = re.fullmatch(SUBJECT + r"\s+(IS\s+)?(NOT\s+)?VALUED", clause)
        if m:
            clauses.append({"at": m.group(1), "op": "not-valued" if m.group(3) else "valued"})
            continue
        m = re.fullmatch(SUBJECT + r"\s+(EQUALS|IS|NOT EQUALS|IS NOT)\s+" + LITERAL, clause)
        if m:
            op = "not-equals" if "NOT" in m.group(2) else "equals"
            clauses.append({"at": m.group(1), "op": op, "values": [m.group(3)]})
            continue
        m = re.fullmatch(SUBJECT + r"\s+(IS\s+)?(NOT\s+)?IN\s*\((.*)\)", clause)
        if m:
            values = re.findall(LITERAL, m.group(4))
            if not values:
                return None
            clauses.append({"at": m.group(1), "op": "not-in" if m.group(3) else "in", "values": values})
            continue
        return None
    for clause in clauses:
        # In a data type map the subject is a component of the value at hand:
        # written "XTN.3" (the tables also write "HD-3").
        if kind == "datatype":
            clause["at"] = clause["at"][:2] + clause["at"][2:].replace("-", ".")
    return clauses


# --- rows -------------------------------------------------------------------


def position_of(identifier):
    """'PID-5' -> 5, 'XPN.7' -> 7; None for anything else."""
    m = re.fullmatch(r"[A-Z][A-Z0-9]{1,2}[-.](\d+)", identifier)
    return int(m.group(1)) if m else None


def clean_target(target):
    target = target.replace(" ", "")
    assign = None
    m = re.fullmatch(r'([^=]+)="([^"]*)"', target)
    if m:
        target, assign = m.group(1), m.group(2)
    if target in ("$value", "$this"):
        target = ""
    # The tables write an extension's url as "uri" in places; url is meant.
    target = re.sub(r"(extension(?:\[\d+\])?)\.uri$", r"\1.url", target)
    return target, assign


def read_map(path, map_name, kind):
    """The rows of one segment or data type table, and the rows left out."""
    rows = csv_rows(path)
    context = context_type_of(map_name)
    kept, skipped = [], []
    overridden = set()
    for row in rows[2:]:
        identifier = cell(row, 1)
        target = cell(row, 9)
        position = position_of(identifier)
        if position is None or not target:
            continue
        if kind == "segment" and target in ("$value", "$this"):
            skipped.append((identifier, target, "it names no element of the resource"))
            continue
        if (map_name, position) in OVERRIDES:
            if position not in overridden:
                kept.extend(OVERRIDES[(map_name, position)])
                overridden.add(position)
            continue
        target, assign_in_target = clean_target(target)
        # A few data type tables start their paths with the type itself
        # ("Quantity.code" in CWE[Quantity]); the others, and the maps, at
        # the element the row fills.
        if kind == "datatype" and context and target.startswith(context + "."):
            target = target[len(context) + 1 :]
        if map_name in CHAINS:
            if ".partOf." in target or target.endswith(".partOf"):
                skipped.append((identifier, target, "the chain makes each one part of the next one present"))
                continue
            # "[4].location(Location.mode)": the table's way, in places, of
            # naming an element of the instance itself.
            target = re.sub(r"^(\[\d+\])\.location\(Location\.([A-Za-z0-9\[\]\.]+)\)$", r"\1.\2", target)
        assign = cell(row, 16)
        if assign.startswith('"') and assign.endswith('"') and len(assign) >= 2:
            assign = assign[1:-1].strip()
        elif assign:
            skipped.append((identifier, target, "its assignment is an expression, not a value"))
            continue
        if assign_in_target is not None and not assign:
            assign = assign_in_target
        if re.search(r"extension(\[\d+\])?\.url$", target) and not assign:
            skipped.append((identifier, target, "an extension's url must be a fixed value"))
            continue
        # "participant[1].individual(Practitioner)": the value makes a resource
        # of its own (by a data type map whose target is that type), which the
        # element refers to.
        creates = None
        made = re.fullmatch(r"([A-Za-z0-9\[\]\.]+)\(([A-Z][A-Za-z]+)\)", target)
        if made and cell(row, 14):
            if made.group(2) not in CREATED_TYPES:
                skipped.append((identifier, target, f"courier does not make {made.group(2)} resources from v2 yet"))
                continue
            target, creates = made.group(1), made.group(2)
        if "(" in target:
            skipped.append((identifier, target, "it creates or points into another resource"))
            continue
        if re.search(r"\[\d+-\d+\]", target):
            skipped.append((identifier, target, "it spreads one value over several elements"))
            continue
        why = check_path(context, target)
        if why:
            skipped.append((identifier, target, why))
            continue
        when = parse_condition(cell(row, 6), kind)
        if when is None:
            skipped.append((identifier, target, "its condition is not computable: " + " ".join(cell(row, 6).split())))
            continue
        entry = {"from": position, "to": target}
        datatype_map = cell(row, 14).replace(" ", "")
        if creates:
            if assign:
                skipped.append((identifier, target + "(" + creates + ")",
                                "it both makes a resource and assigns a value"))
                continue
            # The tables spell some map names in lower case ("PL[location]").
            made_by = datatype_map[datatype_map.find("[") + 1 : -1].split("-")[0]
            if made_by.lower() != creates.lower():
                skipped.append((identifier, target + "(" + creates + ")",
                                f"{datatype_map} does not make a {creates}"))
                continue
            entry["creates"] = creates
        if datatype_map and not assign:
            entry["map"] = datatype_map
        vocabulary = cell(row, 15).replace(" ", "")
        if vocabulary:
            entry["vocabulary"] = vocabulary
        if assign:
            entry["assign"] = assign
        if when:
            entry["when"] = when
        kept.append(entry)
    return kept, skipped


def read_vocabulary(path):
    codes = {}
    v2_system = ""
    for row in csv_rows(path)[2:]:
        code, fhir_code = cell(row, 0), cell(row, 6)
        if not code or not fhir_code or code in codes:
            continue
        v2_system = v2_system or cell(row, 2)
        entry = {"code": fhir_code}
        if cell(row, 9):
            entry["system"] = cell(row, 9)
        if cell(row, 8):
            entry["display"] = cell(row, 8)
        codes[code] = entry
    return v2_system, codes


# --- output -----------------------------------------------------------------


def scalar(value):
    return json.dumps(value, ensure_ascii=False)


def flow(mapping):
    parts = []
    for key, value in mapping.items():
        if isinstance(value, list):
            if value and isinstance(value[0], dict):
                value_text = "[" + ", ".join(flow(v) for v in value) + "]"
            else:
                value_text = "[" + ", ".join(scalar(v) for v in value) + "]"
        elif isinstance(value, dict):
            value_text = flow(value)
        else:
            value_text = scalar(value)
        parts.append(f"{key}: {value_text}")
    return "{" + ", ".join(parts) + "}"


def write_map(folder, map_name, source, kind, kept, skipped):
    lines = [
        "# Generated by schemas/hl7v2/generate_maps.py from the HL7 V2-to-FHIR IG's",
        f"# table \"{os.path.basename(source)}\". Regenerate rather than edit, or",
        "# remove this line's file from the generator's list and keep it by hand.",
    ]
    if skipped:
        lines.append("# Rows of the table not carried over:")
        for identifier, target, why in skipped:
            lines.append(f"#   {identifier} -> {target}: {why}")
    lines.append(f"map: {scalar(map_name)}")
    if map_name in CHAINS:
        lines.append(f"chain: {scalar(CHAINS[map_name])}")
    if kind == "segment":
        lines.append(f"resource: {scalar(context_type_of(map_name))}")
    lines.append("rows:")
    for entry in kept:
        lines.append("  - " + flow(entry))
    if not kept:
        lines[-1] = "rows: []"
    path = os.path.join(folder, map_name + ".yaml")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    written.add(path)


# --- message structures ---------------------------------------------------------


def read_structure(path):
    """The segment grammar of a message table: nested groups of segments,
    each with its min and max (-1: repeats)."""
    root = {"items": []}
    stack = [root]
    last = None
    for row in csv_rows(path)[2:]:
        identifier, syntax = cell(row, 1), cell(row, 2).replace(" ", "")
        if not identifier or not syntax or identifier == last:
            continue  # several map rows for one segment
        last = identifier
        # A group closes with a row of brackets alone ("}]"); its identifier
        # begins with "/", which the tables also put on a segment by mistake.
        if re.fullmatch(r"[\]}>]+", syntax):
            if len(stack) > 1:
                stack.pop()
            continue
        if syntax == "<":  # a choice of one segment among several, closed by ">"
            entry = {"choice": [], "min": 1, "max": 1, "items": []}
            stack[-1]["items"].append(entry)
            stack.append(entry)
            continue
        if syntax == "|":
            continue
        optional = syntax.startswith("[") or syntax.startswith("{[")
        repeats = "{" in syntax
        name = syntax.strip("[]{}")
        entry = {"min": 0 if optional else 1, "max": -1 if repeats else 1}
        if not name:  # a group opens
            entry = {"group": identifier.split(".")[-1], **entry, "items": []}
            stack[-1]["items"].append(entry)
            stack.append(entry)
        elif re.fullmatch(r"[A-Z][A-Z0-9]{2}", name):
            if "choice" in stack[-1]:
                stack[-1]["choice"].append(name)
            else:
                stack[-1]["items"].append({"segment": name, **entry})
    return root["items"]


def write_structure_items(lines, items, indent):
    for item in items:
        if "segment" in item:
            lines.append(f"{indent}- {{segment: {item['segment']}, min: {item['min']}, max: {item['max']}}}")
        elif "choice" in item:
            lines.append(f"{indent}- {{choice: [{', '.join(item['choice'])}]}}")
        else:
            lines.append(f"{indent}- group: {item['group']}")
            lines.append(f"{indent}  min: {item['min']}")
            lines.append(f"{indent}  max: {item['max']}")
            lines.append(f"{indent}  segments:")
            write_structure_items(lines, item["items"], indent + "    ")


def write_structures(conformance, output):
    folder = os.path.join(output, "structures")
    os.makedirs(folder, exist_ok=True)
    for name in STRUCTURES:
        source = find_table(os.path.join(conformance, "messages"), "HL7 Message - FHIR R4_ ", name)
        if source is None:
            print(f"no message table for {name}", file=sys.stderr)
            continue
        lines = [
            "# Generated by schemas/hl7v2/generate_maps.py from the HL7 V2-to-FHIR IG's",
            f"# table \"{os.path.basename(source)}\": the message's segments in order,",
            "# with their groups; min 0 is optional, max -1 repeats; a choice is one",
            "# segment of those listed.",
            f"structure: {name}",
            "segments:",
        ]
        write_structure_items(lines, read_structure(source), "  ")
        path = os.path.join(folder, name + ".yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        written.add(path)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    conformance, output = sys.argv[1], sys.argv[2]
    for sub in ("segments", "datatypes", "vocabulary"):
        os.makedirs(os.path.join(output, sub), exist_ok=True)
    pending = [("segment", name) for name in SEGMENT_MAPS]
    seen = set()
    vocabularies = set()
    counts = {"kept": 0, "skipped": 0, "maps": 0}
    while pending:
        kind, name = pending.pop(0)
        if (kind, name) in seen:
            continue
        seen.add((kind, name))
        if kind == "segment":
            source = find_table(os.path.join(conformance, "segments"), "HL7 Segment - FHIR R4_ ", name)
        else:
            source = find_table(os.path.join(conformance, "datatypes"), "HL7 Data Type - FHIR R4_ ", name)
        if source is None:
            print(f"no table for {kind} map {name}", file=sys.stderr)
            continue
        kept, skipped = read_map(source, name, kind)
        usable = []
        for entry in kept:
            datatype_map = entry.get("map")
            if datatype_map and find_table(os.path.join(conformance, "datatypes"), "HL7 Data Type - FHIR R4_ ",
                                           datatype_map) is None:
                skipped.append((f"{name} {entry['from']}", entry["to"], f"the IG has no table {datatype_map}"))
                continue
            if datatype_map:
                entry["map"] = datatype_map = table_name(os.path.join(conformance, "datatypes"),
                                                         "HL7 Data Type - FHIR R4_ ", datatype_map)
                pending.append(("datatype", datatype_map))
            if "vocabulary" in entry:
                vocabularies.add(entry["vocabulary"])
            usable.append(entry)
        counts["kept"] += len(usable)
        counts["skipped"] += len(skipped)
        counts["maps"] += 1
        folder = os.path.join(output, "segments" if kind == "segment" else "datatypes")
        write_map(folder, name, source, kind, usable, skipped)
    written_vocabularies = 0
    for name in sorted(vocabularies):
        source = find_table(os.path.join(conformance, "codesystems"), "HL7 Concept Map_ ", name)
        if source is None:
            print(f"no vocabulary table {name}: its rows keep the v2 code", file=sys.stderr)
            continue
        v2_system, codes = read_vocabulary(source)
        lines = [
            "# Generated by schemas/hl7v2/generate_maps.py from the HL7 V2-to-FHIR IG's",
            f"# table \"{os.path.basename(source)}\".",
            f"vocabulary: {scalar(name)}",
            f"v2-table: {scalar(v2_system)}",
            "codes:",
        ]
        for code, entry in codes.items():
            lines.append(f"  {scalar(code)}: {flow(entry)}")
        path = os.path.join(output, "vocabulary", name + ".yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write("\n".join(lines) + "\n")
        written.add(path)
        written_vocabularies += 1
    write_structures(conformance, output)
    # Generated files this run did not write are stale; hand-written ones stay.
    removed = 0
    for sub in ("segments", "datatypes", "vocabulary", "structures"):
        folder = os.path.join(output, sub)
        for file in os.listdir(folder):
            path = os.path.join(folder, file)
            with open(path, encoding="utf-8") as f:
                generated = f.readline().startswith("# Generated by")
            if generated and path not in written:
                os.remove(path)
                removed += 1
    print(f"{counts['maps']} maps, {counts['kept']} rows kept, {counts['skipped']} left out (listed in each file); "
          f"{written_vocabularies} vocabularies; {removed} stale files removed")


if __name__ == "__main__":
    main()
