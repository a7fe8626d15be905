// Places schemas/fhir/r4/types.json in the binary's read-only data, between
// the symbols courier_r4_types_begin and courier_r4_types_end.
asm(".section .rodata\n"
    ".global courier_r4_types_begin\n"
    ".global courier_r4_types_end\n"
    "courier_r4_types_begin:\n"
    ".incbin \"" COURIER_TYPES_JSON
    "\"\n"
    "courier_r4_types_end:\n"
    ".byte 0\n"
    ".previous\n");
