#!/usr/bin/env node
// Independent verifier for key-based Sigstore bundles, used by Airseal's interop tests.
//
// Airseal verifies its own key-based bundles with its own code (sigstore-python cannot, see
// sigstore-python#1244); this script lets the tests prove that a second, unrelated implementation,
// sigstore-js's @sigstore/verify used as a library, accepts exactly the same files.
//
// Usage: node verify_bundle.mjs --bundle B.json --key PUB.pem [--artifact FILE] [--library-only]
//        [--trusted-root trusted_root.json --tlog-threshold N]
// With --trusted-root, its transparency logs are trusted too and N (default 1) verified log
// entries are required: SET, inclusion proof and signed checkpoint, as for any Sigstore bundle.
// Prints one JSON line, {"ok": true} or {"ok": false, "error": "..."}.
// Exit status: 0 verified, 1 verification failed, 2 usage error.
//
// What @sigstore/verify 3.1.1 checks, and what it does not (read from its dist/ source):
// - the bundle shape (@sigstore/bundle's bundleFromJSON + assertBundleLatest; a DSSE envelope must
//   hold exactly one signature);
// - that the bundle's publicKey.hint names a key in the trust material (our key is registered only
//   under its own hint, base64 SHA-256 of its DER SPKI, so a foreign hint fails "key not found");
// - the signature: message signatures over the artifact with the hash named by
//   messageDigest.algorithm, DSSE signatures over the PAE with OpenSSL's default digest (SHA-256).
// It does NOT compare messageSignature.messageDigest with the artifact, nor a DSSE statement's
// subjects with anything. Unless --library-only is given, this script adds those two checks itself
// (as sigstore-python does since #1652, and as `cosign verify-blob-attestation` does for subjects),
// and prefixes their failures with "harness:" so it is clear which side refused.

import { createHash, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { bundleFromJSON } from '@sigstore/bundle';
import { HashAlgorithm, PublicKeyDetails, TrustedRoot } from '@sigstore/protobuf-specs';
import { Verifier, toSignedEntity, toTrustMaterial } from '@sigstore/verify';

const EXIT_OK = 0;
const EXIT_FAILED = 1;
const EXIT_USAGE = 2;
const USAGE =
  'usage: node verify_bundle.mjs --bundle B.json --key PUB.pem [--artifact FILE] [--library-only]';

// Node's digest names for the bundle's HashAlgorithm enum (the same map @sigstore/verify uses).
const NODE_HASH = {
  [HashAlgorithm.HASH_ALGORITHM_UNSPECIFIED]: 'sha256',
  [HashAlgorithm.SHA2_256]: 'sha256',
  [HashAlgorithm.SHA2_384]: 'sha384',
  [HashAlgorithm.SHA2_512]: 'sha512',
  [HashAlgorithm.SHA3_256]: 'sha3-256',
  [HashAlgorithm.SHA3_384]: 'sha3-384',
};

class UsageError extends Error {}
class HarnessError extends Error {}

function emit(result, code) {
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exitCode = code;
}

function readOrUsage(path, what) {
  try {
    return readFileSync(path);
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${e.message}`);
  }
}

// The Sigstore key details for a public key, derived from the key itself (never trusted from the
// bundle). @sigstore/verify 3.1.1 ignores them (it builds the key from rawBytes as SPKI), but they
// are part of the trust material's contract, so they are given correctly.
function keyDetailsFor(key) {
  const type = key.asymmetricKeyType;
  const info = key.asymmetricKeyDetails ?? {};
  if (type === 'ec') {
    const byCurve = {
      prime256v1: PublicKeyDetails.PKIX_ECDSA_P256_SHA_256,
      secp384r1: PublicKeyDetails.PKIX_ECDSA_P384_SHA_384,
      secp521r1: PublicKeyDetails.PKIX_ECDSA_P521_SHA_512,
    };
    if (info.namedCurve in byCurve) return byCurve[info.namedCurve];
    throw new HarnessError(`harness: unsupported EC curve ${info.namedCurve}`);
  }
  if (type === 'rsa') {
    const bySize = {
      2048: PublicKeyDetails.PKIX_RSA_PKCS1V15_2048_SHA256,
      3072: PublicKeyDetails.PKIX_RSA_PKCS1V15_3072_SHA256,
      4096: PublicKeyDetails.PKIX_RSA_PKCS1V15_4096_SHA256,
    };
    if (info.modulusLength in bySize) return bySize[info.modulusLength];
    throw new HarnessError(`harness: unsupported RSA size ${info.modulusLength}`);
  }
  if (type === 'ed25519') return PublicKeyDetails.PKIX_ED25519;
  throw new HarnessError(`harness: unsupported key type ${type}`);
}

// The checks @sigstore/verify leaves to its caller (see the header comment).
function harnessChecks(bundle, artifact) {
  const content = bundle.content;
  if (content.$case === 'messageSignature') {
    const { algorithm, digest } = content.messageSignature.messageDigest;
    const actual = createHash(NODE_HASH[algorithm] ?? 'sha256').update(artifact).digest();
    if (!actual.equals(Buffer.from(digest))) {
      throw new HarnessError('harness: messageSignature.messageDigest does not match the artifact');
    }
    return;
  }
  if (artifact === undefined) return;
  const want = createHash('sha256').update(artifact).digest('hex');
  let statement;
  try {
    statement = JSON.parse(Buffer.from(content.dsseEnvelope.payload).toString('utf8'));
  } catch (e) {
    throw new HarnessError(`harness: DSSE payload is not JSON: ${e.message}`);
  }
  const subjects = Array.isArray(statement?.subject) ? statement.subject : [];
  if (!subjects.some((s) => s?.digest?.sha256?.toLowerCase() === want)) {
    throw new HarnessError('harness: no statement subject has the artifact sha256');
  }
}

function describe(e) {
  if (Array.isArray(e?.fields)) return `${e.message}: ${e.fields.join(', ')}`; // ValidationError
  if (e?.code) return `${e.code}: ${e.message}`; // VerificationError, PolicyError
  return String(e?.message ?? e);
}

function main(argv) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        bundle: { type: 'string' },
        key: { type: 'string' },
        artifact: { type: 'string' },
        'library-only': { type: 'boolean', default: false },
        'trusted-root': { type: 'string' },
        'tlog-threshold': { type: 'string' },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    throw new UsageError(`${e.message}\n${USAGE}`);
  }
  if (!values.bundle || !values.key) throw new UsageError(USAGE);

  const bundleText = readOrUsage(values.bundle, 'bundle').toString('utf8');
  const keyPem = readOrUsage(values.key, 'key');
  const artifact = values.artifact ? readOrUsage(values.artifact, 'artifact') : undefined;

  const key = createPublicKey(keyPem);
  const spkiDer = key.export({ type: 'spki', format: 'der' });
  const hint = createHash('sha256').update(spkiDer).digest('base64');

  const bundle = bundleFromJSON(JSON.parse(bundleText));
  if (bundle.content.$case === 'messageSignature' && artifact === undefined) {
    throw new UsageError('a message-signature bundle needs --artifact');
  }

  // Without --trusted-root: no CAs, logs or TSAs; this site trusts exactly one key, under its hint.
  const trustedRoot = TrustedRoot.fromJSON(
    values['trusted-root']
      ? JSON.parse(readOrUsage(values['trusted-root'], 'trusted root').toString('utf8'))
      : { mediaType: 'application/vnd.dev.sigstore.trustedroot+json;version=0.1' },
  );
  const tlogThreshold = values['trusted-root'] ? Number(values['tlog-threshold'] ?? '1') : 0;
  const trust = toTrustMaterial(trustedRoot, {
    [hint]: { rawBytes: spkiDer, keyDetails: keyDetailsFor(key) },
  });
  const verifier = new Verifier(trust, {
    tlogThreshold,
    ctlogThreshold: 0,
    timestampThreshold: 0,
  });
  // An empty policy: key-based bundles carry no identity to match.
  verifier.verify(toSignedEntity(bundle, artifact), {});
  if (!values['library-only']) harnessChecks(bundle, artifact);
}

try {
  main(process.argv.slice(2));
  emit({ ok: true }, EXIT_OK);
} catch (e) {
  if (e instanceof UsageError) {
    emit({ ok: false, error: e.message }, EXIT_USAGE);
  } else {
    emit({ ok: false, error: describe(e) }, EXIT_FAILED);
  }
}
