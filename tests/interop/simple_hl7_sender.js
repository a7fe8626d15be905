// Sends HL7 v2 messages to an MLLP listener with npm's simple-hl7 (its
// parser reads each file, its TCP client frames it and waits for the ACK),
// and prints each ACK's MSA-1 and MSA-2, one line per message.
// Usage: node simple_hl7_sender.js HOST PORT FILE...
const fs = require('fs');
const hl7 = require('simple-hl7');

const [host, port, ...files] = process.argv.slice(2);
const parser = new hl7.Parser();
const client = hl7.Server.createTcpClient(host, Number(port));

function next(i) {
  if (i === files.length) {
    client.close();
    return;
  }
  const text = fs.readFileSync(files[i], 'utf8').replace(/\r?\n/g, '\r');
  client.send(parser.parse(text), (err, ack) => {
    if (err) {
      console.error('send failed: ' + err.message);
      process.exit(1);
    }
    const msa = ack.getSegment('MSA');
    console.log(msa.getField(1) + ' ' + msa.getField(2));
    setImmediate(() => next(i + 1));  // the client is busy until its callback returns
  });
}
next(0);
