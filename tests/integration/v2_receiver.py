#!/usr/bin/python3
"""A legacy HL7 v2 receiver for the tests: python3-hl7's asyncio MLLP server
(Debian's, hence /usr/bin/python3). Each message it takes is appended to a
log file as one JSON line; it answers AA, or AR when PID-5 names REFUSE, or
AE the first time PID-5 names FLAKY, or, when PID-5 names ENHANCED, CA and
then on the same connection an application ACK (AA), as some receivers in
enhanced mode do.

Usage: v2_receiver.py PORT LOG_FILE"""
import asyncio
import json
import sys

import hl7
import hl7.mllp

PORT, LOG = int(sys.argv[1]), sys.argv[2]
seen_flaky = set()


async def handle(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            family = str(message.segment("PID")(5)(1)(1)) if any(s[0][0] == "PID" for s in message) else ""
            with open(LOG, "a") as log:
                log.write(json.dumps({"raw": str(message)}) + "\n")
            control_id = str(message.segment("MSH")(10))
            if family == "REFUSE":
                code = "AR"
            elif family == "FLAKY" and control_id not in seen_flaky:
                seen_flaky.add(control_id)
                code = "AE"
            else:
                code = "AA"
            if family == "ENHANCED":
                writer.writemessage(message.create_ack("CA"))
                await writer.drain()
                await asyncio.sleep(0.05)
            writer.writemessage(message.create_ack(code))
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def main():
    server = await hl7.mllp.start_hl7_server(handle, host="127.0.0.1", port=PORT, encoding="utf-8")
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


asyncio.run(main())
