#!/usr/bin/python3
"""The peer reference for the MLLP benchmark: python3-hl7's asyncio MLLP
server (Debian's, hence /usr/bin/python3), which parses each message and
answers create_ack(). Usage: hl7_peer.py PORT"""
import asyncio
import sys

import hl7.mllp


async def handle(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            writer.writemessage(message.create_ack("CA"))
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def main():
    server = await hl7.mllp.start_hl7_server(handle, host="127.0.0.1", port=int(sys.argv[1]), encoding="utf-8")
    async with server:
        await server.serve_forever()


asyncio.run(main())
