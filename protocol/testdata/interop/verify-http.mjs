#!/usr/bin/env node
// Independent verifier for the signed HTTP responses of a MESH node's public
// API (a directory). It shares no code with the Go implementation, nor with
// verify.mjs: RFC 8785 comes from the `canonicalize` package, Ed25519 from
// node:crypto, and the public key is recovered from the node ID itself.
//
// A response body is a JSON object with a "directory" block
// {nodeId, timestamp, signature}. The signature is Ed25519, by the key the
// node ID embeds, over the canonical JSON of the body without that block;
// the body's "servedAt" must equal directory.timestamp. Every signed lesson
// the body carries (results[].signedLesson, signedLesson) is checked too,
// against its own publisher's key, as is a revocation.
//
// As the Go verifier (protocol.VerifyResponse) does, it refuses a body
// with a duplicate member name in any object (JSON.parse would keep the
// last one silently, so a signed body could be read two ways), and a
// response whose timestamp is more than 5 minutes from this machine's
// clock (--window-ms changes that); --allow-old accepts any timestamp in
// the past, for an answer kept as proof. A timestamp in the future beyond
// the window is refused either way.
//
// usage:
//   curl -s -X POST https://dir.example/v1/search -d '{"query":"..."}' | node verify-http.mjs
//   node verify-http.mjs [--expect-node NODEID] [--no-lessons] [--allow-old] [--window-ms MS] [FILE]
// exit status: 0 verified, 1 did not verify, 2 usage error

import { readFileSync } from 'node:fs';
import { createPublicKey, verify } from 'node:crypto';
import canonicalize from 'canonicalize';

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

// base58btc decoding (Bitcoin alphabet).
function base58Decode(s) {
  let n = 0n;
  for (const c of s) {
    const i = B58.indexOf(c);
    if (i < 0) throw new Error(`not base58: ${JSON.stringify(c)}`);
    n = n * 58n + BigInt(i);
  }
  const bytes = [];
  while (n > 0n) {
    bytes.unshift(Number(n % 256n));
    n /= 256n;
  }
  for (const c of s) {
    if (c !== '1') break;
    bytes.unshift(0);
  }
  return Buffer.from(bytes);
}

// keyFromNodeId recovers the raw Ed25519 key from a libp2p peer ID: the
// identity multihash (0x00, length 0x24) of the protobuf PublicKey
// {Type: Ed25519 = 0x08 0x01, Data: 0x12 0x20 || key}.
function keyFromNodeId(id) {
  if (typeof id !== 'string' || !id.startsWith('12D3KooW')) throw new Error(`nodeId ${JSON.stringify(id)} is not an Ed25519 peer ID`);
  const b = base58Decode(id);
  const prefix = Buffer.from([0x00, 0x24, 0x08, 0x01, 0x12, 0x20]);
  if (b.length !== 38 || !b.subarray(0, 6).equals(prefix)) throw new Error(`nodeId ${id} does not embed an Ed25519 key`);
  return b.subarray(6);
}

function strictBase64(s, what) {
  if (typeof s !== 'string') throw new Error(`${what}: not a string`);
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) throw new Error(`${what}: not standard padded base64`);
  return b;
}

function ed25519Verify(rawKey, payload, sig) {
  const key = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: rawKey.toString('base64url') }, format: 'jwk' });
  return verify(null, Buffer.from(payload, 'utf8'), key, sig);
}

// checkNoDuplicateKeys scans JSON text and throws if any object holds a
// member name twice (compared after unescaping). It assumes text that
// JSON.parse accepts.
export function checkNoDuplicateKeys(text) {
  const stack = []; // per open object: {keys: Set, expectKey}; per array: null
  for (let i = 0; i < text.length; i++) {
    const c = text[i];
    if (c === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      const top = stack[stack.length - 1];
      if (top && top.expectKey) {
        const key = JSON.parse(text.slice(i, j + 1));
        if (top.keys.has(key)) throw new Error(`duplicate member ${JSON.stringify(key)} in an object`);
        top.keys.add(key);
        top.expectKey = false;
      }
      i = j;
    } else if (c === '{') {
      stack.push({ keys: new Set(), expectKey: true });
    } else if (c === '[') {
      stack.push(null);
    } else if (c === '}' || c === ']') {
      stack.pop();
    } else if (c === ',') {
      const top = stack[stack.length - 1];
      if (top) top.expectKey = true;
    }
  }
}

// checkTime refuses a timestamp (Unix ms) outside the window around now;
// allowOld accepts any past one.
export function checkTime(ts, windowMs, allowOld, now = Date.now()) {
  if (ts > now + windowMs) throw new Error(`timestamp ${new Date(ts).toISOString()} is in the future beyond the ${windowMs} ms window`);
  if (!allowOld && ts < now - windowMs) throw new Error(`timestamp ${new Date(ts).toISOString()} is older than the ${windowMs} ms window (--allow-old accepts an answer kept as proof)`);
}

// verifyResponse checks the directory block's signature and returns it.
export function verifyResponse(body, expectNode) {
  if (!body || typeof body !== 'object' || Array.isArray(body)) throw new Error('the body is not a JSON object');
  const d = body.directory;
  if (!d || typeof d !== 'object') throw new Error('no "directory" block: the response is not signed');
  const keys = Object.keys(d).sort().join(',');
  if (keys !== 'nodeId,signature,timestamp') throw new Error(`directory block has fields ${keys}, want nodeId, signature, timestamp`);
  if (!Number.isSafeInteger(d.timestamp) || d.timestamp <= 0) throw new Error('directory.timestamp: want Unix milliseconds');
  if (body.servedAt !== d.timestamp) throw new Error(`servedAt ${body.servedAt} differs from directory.timestamp ${d.timestamp}`);
  if (expectNode && d.nodeId !== expectNode) throw new Error(`signed by ${d.nodeId}, expected ${expectNode}`);
  const raw = keyFromNodeId(d.nodeId);
  const sig = strictBase64(d.signature, 'directory.signature');
  if (sig.length !== 64) throw new Error(`directory.signature: ${sig.length} bytes, want 64`);
  const rest = { ...body };
  delete rest.directory;
  const payload = canonicalize(rest);
  if (!ed25519Verify(raw, payload, sig)) throw new Error('the directory signature does not verify over the canonical body');
  if (ed25519Verify(raw, payload + ' ', sig)) throw new Error('verifier is vacuous');
  return d;
}

// verifyLesson checks a SignedLesson against its publisher's key.
function verifyLesson(sl) {
  const s = sl?.signature;
  if (!s || s.algorithm !== 'ed25519') throw new Error('signature block missing or not ed25519');
  if (!Number.isSafeInteger(s.timestamp)) throw new Error('signature.timestamp: want an integer');
  const raw = strictBase64(s.publicKey, 'publicKey');
  if (raw.length !== 32 || !keyFromNodeId(s.nodeId).equals(raw)) throw new Error(`nodeId ${s.nodeId} is not the peer ID of publicKey`);
  const sig = strictBase64(s.sig, 'sig');
  const payload = canonicalize({ lesson: sl.lesson, publication: sl.publication, timestamp: s.timestamp });
  if (sig.length !== 64 || !ed25519Verify(raw, payload, sig)) throw new Error('the publisher signature does not verify');
  return `${sl.lesson?.id}@${s.nodeId}`;
}

// verifyRevocation checks a Revocation against its publisher's key.
function verifyRevocation(r) {
  const s = r?.signature;
  if (!s || s.algorithm !== 'ed25519') throw new Error('signature block missing or not ed25519');
  const raw = strictBase64(s.publicKey, 'publicKey');
  if (raw.length !== 32 || !keyFromNodeId(r.nodeId).equals(raw)) throw new Error(`nodeId ${r.nodeId} is not the peer ID of publicKey`);
  const body = { ...r };
  delete body.signature;
  if (!ed25519Verify(raw, canonicalize(body), strictBase64(s.sig, 'sig'))) throw new Error('the revocation signature does not verify');
  return `${r.lessonId}@${r.nodeId}`;
}

function main(argv) {
  let expectNode = '';
  let lessons = true;
  let file = '';
  let allowOld = false;
  let windowMs = 5 * 60 * 1000;
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--expect-node': expectNode = argv[++i]; if (!expectNode) return usage(); break;
      case '--allow-old': allowOld = true; break;
      case '--window-ms': windowMs = Number(argv[++i]); if (!Number.isSafeInteger(windowMs) || windowMs <= 0) return usage(); break;
      case '--no-lessons': lessons = false; break;
      case '-h': case '--help': console.log(usageText); return 0;
      default:
        if (argv[i].startsWith('-') || file) return usage();
        file = argv[i];
    }
  }
  let body;
  let text;
  try {
    text = readFileSync(file || 0, 'utf8');
    body = JSON.parse(text);
  } catch (e) {
    console.log(`FAIL not JSON: ${e.message}`);
    return 1;
  }
  try {
    checkNoDuplicateKeys(text);
  } catch (e) {
    console.log(`FAIL response: ${e.message}`);
    return 1;
  }
  let failed = 0;
  try {
    const d = verifyResponse(body, expectNode);
    checkTime(d.timestamp, windowMs, allowOld);
    console.log(`ok   response signed by ${d.nodeId} at ${new Date(d.timestamp).toISOString()}`);
  } catch (e) {
    console.log(`FAIL response: ${e.message}`);
    return 1;
  }
  if (lessons) {
    const items = [];
    if (Array.isArray(body.results)) body.results.forEach((r, i) => items.push([`results[${i}]`, r?.signedLesson, verifyLesson]));
    if (body.signedLesson) items.push(['signedLesson', body.signedLesson, verifyLesson]);
    if (body.revocation) items.push(['revocation', body.revocation, verifyRevocation]);
    for (const [where, rec, check] of items) {
      try {
        console.log(`ok   ${where} ${check(rec)}`);
      } catch (e) {
        failed++;
        console.log(`FAIL ${where}: ${e.message}`);
      }
    }
  }
  return failed === 0 ? 0 : 1;
}

const usageText = `usage: node verify-http.mjs [--expect-node NODEID] [--no-lessons] [--allow-old] [--window-ms MS] [FILE]
  verifies a signed MESH public API response read from FILE or standard input,
  and every signed lesson and revocation in it (unless --no-lessons);
  refuses duplicate member names, and a timestamp more than MS (default
  300000, 5 minutes) from this clock (--allow-old: any past timestamp)
exit status: 0 verified, 1 did not verify, 2 usage error`;

function usage() {
  console.error(usageText);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
