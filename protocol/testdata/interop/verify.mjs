#!/usr/bin/env node
// Independent verifier for MESH signed records (lessons, revocations, identity
// documents, encrypted lessons, key policies and signed key requests). It shares no code with the Go
// implementation: RFC 8785 comes from the `canonicalize` package (the
// reference implementation), Ed25519 from node:crypto, and the libp2p peer ID
// is derived here by hand. See README.md for usage.

import { readFileSync } from 'node:fs';
import { createHash, createPrivateKey, createPublicKey, verify } from 'node:crypto';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import canonicalize from 'canonicalize';

const here = dirname(fileURLToPath(import.meta.url));

// ---- encodings -------------------------------------------------------------

const B58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';

// base58btc (Bitcoin alphabet): big-endian base conversion, one '1' per
// leading zero byte.
export function base58(bytes) {
  let n = 0n;
  for (const b of bytes) n = n * 256n + BigInt(b);
  let out = '';
  while (n > 0n) {
    out = B58[Number(n % 58n)] + out;
    n /= 58n;
  }
  for (const b of bytes) {
    if (b !== 0) break;
    out = '1' + out;
  }
  return out;
}

// peerId returns the libp2p peer ID of a raw 32-byte Ed25519 key: the
// identity multihash (code 0x00, length 0x24) of the protobuf PublicKey
// {Type: Ed25519 (0x08 0x01), Data: key (0x12 0x20 || key)}, in base58btc.
export function peerId(rawKey) {
  const pb = Buffer.concat([Buffer.from([0x08, 0x01, 0x12, 0x20]), rawKey]);
  return base58(Buffer.concat([Buffer.from([0x00, pb.length]), pb]));
}

// strictBase64 decodes standard, padded base64 and rejects anything else
// (Buffer.from is lenient: it skips junk and accepts the URL alphabet).
function strictBase64(s, what) {
  if (typeof s !== 'string') throw new Error(`${what}: not a string`);
  const b = Buffer.from(s, 'base64');
  if (b.toString('base64') !== s) throw new Error(`${what}: not standard padded base64`);
  return b;
}

function publicKeyFromRaw(raw) {
  return createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
}

function rawPublicKeyFromSeed(seedHex) {
  const seed = Buffer.from(seedHex, 'hex');
  if (seed.length !== 32) throw new Error('seed: want 32 bytes');
  // PKCS#8 wrapping of an Ed25519 seed (RFC 8410).
  const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), seed]);
  const jwk = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'jwk' });
  return Buffer.from(jwk.x, 'base64url');
}

export function fingerprint(rawKey) {
  return createHash('sha256').update(rawKey).digest('hex').slice(0, 16).toUpperCase();
}

// ---- records ---------------------------------------------------------------

function detectKind(doc) {
  if (doc && typeof doc === 'object' && !Array.isArray(doc)) {
    if ('lesson' in doc) return 'signedLesson';
    if ('ciphertext' in doc) return 'encryptedLesson';
    if (doc.type === 'revocation') return 'revocation';
    if ('version' in doc) return 'identity';
    if ('access' in doc) return 'keyPolicy';
    if ('keyId' in doc && 'sig' in doc) return 'keyRequest';
  }
  throw new Error('cannot tell what kind of record this is (want a SignedLesson, EncryptedLesson, Revocation, identity document, key policy or signed key request)');
}

// signedParts returns what a record's signature covers and who signed it.
function signedParts(kind, doc) {
  switch (kind) {
    case 'signedLesson': {
      const s = doc.signature;
      if (!s || typeof s !== 'object') throw new Error('signature block missing');
      if (s.algorithm !== 'ed25519') throw new Error(`algorithm ${JSON.stringify(s.algorithm)}, want "ed25519"`);
      if (!Number.isSafeInteger(s.timestamp)) throw new Error('signature.timestamp: want an integer');
      // The signed bytes: canonical JSON of {lesson, publication, timestamp}.
      const payload = canonicalize({ lesson: doc.lesson, publication: doc.publication, timestamp: s.timestamp });
      return { payload, nodeId: s.nodeId, publicKey: s.publicKey, sig: s.sig, key: `${doc.lesson?.id}@${s.nodeId}` };
    }
    case 'revocation': {
      const s = doc.signature;
      if (!s || typeof s !== 'object') throw new Error('signature block missing');
      if (s.algorithm !== 'ed25519') throw new Error(`algorithm ${JSON.stringify(s.algorithm)}, want "ed25519"`);
      // The signed bytes: canonical JSON of the record without signature.
      const body = { ...doc };
      delete body.signature;
      return { payload: canonicalize(body), nodeId: doc.nodeId, publicKey: s.publicKey, sig: s.sig, key: `${doc.lessonId}@${doc.nodeId}` };
    }
    case 'encryptedLesson': {
      const s = doc.signature;
      if (!s || typeof s !== 'object') throw new Error('signature block missing');
      if (s.algorithm !== 'ed25519') throw new Error(`algorithm ${JSON.stringify(s.algorithm)}, want "ed25519"`);
      if (!Number.isSafeInteger(s.timestamp)) throw new Error('signature.timestamp: want an integer');
      const e = doc.encryption;
      if (!e || typeof e !== 'object') throw new Error('encryption block missing');
      if (e.algorithm !== 'aes-256-gcm') throw new Error(`encryption.algorithm ${JSON.stringify(e.algorithm)}, want "aes-256-gcm"`);
      if (strictBase64(e.nonce, 'encryption.nonce').length !== 12) throw new Error('encryption.nonce: want 12 bytes');
      if (strictBase64(e.tag, 'encryption.tag').length !== 16) throw new Error('encryption.tag: want 16 bytes');
      strictBase64(doc.ciphertext, 'ciphertext');
      // The signed bytes: canonical JSON of {lessonId, encryption, ciphertext,
      // publication, timestamp}; the key is not needed.
      const payload = canonicalize({
        lessonId: doc.lessonId, encryption: e, ciphertext: doc.ciphertext,
        publication: doc.publication, timestamp: s.timestamp,
      });
      return { payload, nodeId: s.nodeId, publicKey: s.publicKey, sig: s.sig, key: `${doc.lessonId}@${s.nodeId} (encrypted, ${e.keyId})` };
    }
    case 'keyPolicy': {
      const s = doc.signature;
      if (!s || typeof s !== 'object') throw new Error('signature block missing');
      if (s.algorithm !== 'ed25519') throw new Error(`algorithm ${JSON.stringify(s.algorithm)}, want "ed25519"`);
      // The signed bytes: canonical JSON of the document without signature;
      // nodeId is the author.
      const body = { ...doc };
      delete body.signature;
      return { payload: canonicalize(body), nodeId: doc.nodeId, publicKey: s.publicKey, sig: s.sig, key: `${doc.keyId} of ${doc.lessonId}@${doc.nodeId} (${doc.access})` };
    }
    case 'keyRequest': {
      if (!Number.isSafeInteger(doc.timestamp)) throw new Error('timestamp: want an integer');
      // The signed bytes of GET /mesh/v1/keys/{keyId}: canonical JSON of
      // {keyId, nodeId, publicKey, timestamp}.
      const payload = canonicalize({ keyId: doc.keyId, nodeId: doc.nodeId, publicKey: doc.publicKey, timestamp: doc.timestamp });
      return { payload, nodeId: doc.nodeId, publicKey: doc.publicKey, sig: doc.sig, key: `${doc.keyId} asked by ${doc.nodeId}` };
    }
    case 'identity': {
      if (doc.version !== 'mesh/1.0') throw new Error(`version ${JSON.stringify(doc.version)}, want "mesh/1.0"`);
      const body = { ...doc };
      delete body.signature;
      return { payload: canonicalize(body), nodeId: doc.nodeId, publicKey: doc.publicKey, sig: doc.signature, key: doc.nodeId };
    }
  }
  throw new Error(`unknown kind ${kind}`);
}

// verifyRecord checks one parsed record and returns what it checked. It
// throws with a reason on any failure.
export function verifyRecord(doc, kind = detectKind(doc)) {
  const p = signedParts(kind, doc);
  const raw = strictBase64(p.publicKey, 'publicKey');
  if (raw.length !== 32) throw new Error(`publicKey: ${raw.length} bytes, want 32`);
  const want = peerId(raw);
  if (p.nodeId !== want) throw new Error(`nodeId ${p.nodeId} is not the peer ID of publicKey (${want})`);
  const sig = strictBase64(p.sig, 'sig');
  if (sig.length !== 64) throw new Error(`sig: ${sig.length} bytes, want 64`);
  const payload = Buffer.from(p.payload, 'utf8');
  if (!verify(null, payload, publicKeyFromRaw(raw), sig)) throw new Error('Ed25519 signature does not verify over the canonical bytes');
  // Sanity: the same check fails on other bytes, so a pass means something.
  const other = Buffer.concat([payload, Buffer.from(' ')]);
  if (verify(null, other, publicKeyFromRaw(raw), sig)) throw new Error('verifier is vacuous');
  return { kind, key: p.key, payload, rawKey: raw, sig: p.sig };
}

// ---- modes -----------------------------------------------------------------

function verifyVectors(dir) {
  const manifest = JSON.parse(readFileSync(join(dir, 'vectors.json'), 'utf8'));
  const fail = (msg) => { throw new Error(msg); };
  const seedFile = readFileSync(join(dir, 'seed.hex'), 'utf8').trim();
  if (seedFile !== manifest.seed) fail('seed.hex and vectors.json disagree on the seed');
  const raw = rawPublicKeyFromSeed(manifest.seed);
  if (raw.toString('base64') !== manifest.publicKey) fail(`public key of the seed is ${raw.toString('base64')}, manifest says ${manifest.publicKey}`);
  if (peerId(raw) !== manifest.nodeId) fail(`peer ID of the seed's key is ${peerId(raw)}, manifest says ${manifest.nodeId}`);
  if (fingerprint(raw) !== manifest.fingerprint) fail(`fingerprint is ${fingerprint(raw)}, manifest says ${manifest.fingerprint}`);
  console.log(`ok   key        ${manifest.nodeId} fingerprint ${manifest.fingerprint}`);
  if (!Array.isArray(manifest.vectors) || manifest.vectors.length === 0) fail('no vectors');
  let failed = 0;
  for (const v of manifest.vectors) {
    try {
      const text = readFileSync(join(dir, v.document), 'utf8');
      const r = verifyRecord(JSON.parse(text), v.kind);
      const want = readFileSync(join(dir, v.canonical));
      if (!r.payload.equals(want)) {
        fail(`canonical bytes differ from ${v.canonical}:\n  canonicalize: ${r.payload}\n  checked in:   ${want}`);
      }
      if (r.sig !== v.signature) fail('signature differs from the manifest');
      // A vector signed by another node (a reader asking for a key) names
      // that node's seed; every other vector is signed by the manifest's.
      const signer = v.signerSeed ? rawPublicKeyFromSeed(v.signerSeed) : raw;
      if (!r.rawKey.equals(signer)) fail(`signed by a key other than the ${v.signerSeed ? 'signerSeed\'s' : 'seed\'s'}`);
      if (Buffer.from(text, 'utf8').equals(want)) fail('document is already canonical: it tests nothing');
      console.log(`ok   ${v.name.padEnd(16)} ${r.key}`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${v.name.padEnd(16)} ${e.message}`);
    }
  }
  return failed === 0;
}

// verifyLines verifies one record per non-empty line of standard input
// (JSON Lines) and reports each; all must verify.
function verifyLines(kind) {
  const lines = readFileSync(0, 'utf8').split('\n');
  let n = 0;
  let failed = 0;
  lines.forEach((line, i) => {
    if (line.trim() === '') return;
    n++;
    try {
      const r = verifyRecord(JSON.parse(line), kind || undefined);
      console.log(`ok   line ${i + 1}: ${r.kind} ${r.key}`);
    } catch (e) {
      failed++;
      console.log(`FAIL line ${i + 1}: ${e.message}`);
    }
  });
  if (n === 0) {
    console.log('FAIL no records on standard input');
    return false;
  }
  return failed === 0;
}

function verifyStdin(kind, printCanonical) {
  const text = readFileSync(0, 'utf8');
  let doc;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    console.log(`FAIL stdin: not JSON: ${e.message}`);
    return false;
  }
  try {
    const r = verifyRecord(doc, kind || undefined);
    if (printCanonical) process.stdout.write(r.payload.toString('utf8') + '\n');
    console.log(`ok   ${r.kind} ${r.key}`);
    return true;
  } catch (e) {
    console.log(`FAIL ${e.message}`);
    return false;
  }
}

const KINDS = ['signedLesson', 'revocation', 'identity', 'encryptedLesson', 'keyPolicy', 'keyRequest'];

const usage = `usage:
  node verify.mjs [--vectors DIR]                 verify the golden vectors (default DIR: ../golden)
  node verify.mjs --stdin [--kind K] [--print-canonical]
                                                  verify one record read from standard input;
                                                  K is signedLesson, revocation, identity,
                                                  encryptedLesson, keyPolicy or keyRequest
                                                  (default: detected from the document)
  node verify.mjs --jsonl [--kind K]              verify one record per line of standard input
exit status: 0 verified, 1 did not verify, 2 usage error`;

function main(argv) {
  let mode = 'vectors';
  let dir = join(here, '..', 'golden');
  let kind = '';
  let printCanonical = false;
  for (let i = 0; i < argv.length; i++) {
    switch (argv[i]) {
      case '--vectors': dir = argv[++i]; if (!dir) return usageError(); break;
      case '--stdin': mode = 'stdin'; break;
      case '--jsonl': mode = 'jsonl'; break;
      case '--kind': kind = argv[++i]; if (!KINDS.includes(kind)) return usageError(); break;
      case '--print-canonical': printCanonical = true; break;
      case '-h': case '--help': console.log(usage); return 0;
      default: return usageError();
    }
  }
  try {
    const ok = mode === 'stdin' ? verifyStdin(kind, printCanonical)
      : mode === 'jsonl' ? verifyLines(kind)
        : verifyVectors(dir);
    return ok ? 0 : 1;
  } catch (e) {
    console.log(`FAIL ${e.message}`);
    return 1;
  }
}

function usageError() {
  console.error(usage);
  return 2;
}

process.exitCode = main(process.argv.slice(2));
