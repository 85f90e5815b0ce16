#!/usr/bin/env python3
"""Mint client tokens (SPEC 1.3) the way customers' servers do, with real PyPI libraries.

Run by tests/client_tokens.rs. Reads one JSON document on stdin:

    {"jobs": [
      {"kind": "jwt", "alg": "HS256", "kid": "k1", "key": "<secret, or path of a PEM private key>",
       "claims": {...}, "headers": {...optional extra header fields}},
      {"kind": "ziggeo", "application_token": "...", "encryption_key": "...", "options": {...}},
      {"kind": "raw_hs256", "header": {...}, "claims": {...}, "secret": "..."}
    ]}

and prints a JSON array of the minted tokens, in the order of the jobs.

- `jwt`: PyJWT's `jwt.encode(claims, key, algorithm=alg, headers={"kid": kid, ...})`. For the
  HS algorithms `key` is the shared secret itself; for the others it is the path of a PKCS#8
  PEM private key, read here.
- `ziggeo`: the Ziggeo server SDK's `Ziggeo(app_token, private_key, encryption_key)
  .auth().generate(options)` (ziggeo 2.30, ZiggeoAuth.py), which adds `application_token` and
  a fresh `nonce`. generate() writes into the dict it is given (and its default argument is a
  shared dict), so each call gets a fresh copy.
- `raw_hs256`: a JWS signed by hand with HMAC-SHA256 over exactly the given header and claims.
  It builds forgeries PyJWT refuses to make (an HS256 token "signed" with an RSA public key's
  PEM text, the classic algorithm-confusion attack).

Exits non-zero with a message on stderr when a library is missing or a job is malformed.
"""

import base64
import hashlib
import hmac
import json
import sys

INSTALL = "pip install -r tests/python/requirements.txt"

try:
    import jwt
    from Ziggeo import Ziggeo
except ImportError as error:
    sys.exit(
        "client_tokens.py: a Python test client is missing (%s): run `%s`" % (error, INSTALL)
    )


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def compact_json(value):
    return json.dumps(value, separators=(",", ":")).encode("utf-8")


def mint_jwt(job):
    alg = job["alg"]
    key = job["key"]
    if not alg.startswith("HS"):
        with open(key, "rb") as pem:
            key = pem.read()
    headers = {"kid": job["kid"]}
    headers.update(job.get("headers") or {})
    return jwt.encode(job["claims"], key, algorithm=alg, headers=headers)


def mint_ziggeo(job):
    sdk = Ziggeo(job["application_token"], "unused-private-key", job["encryption_key"])
    # A fresh dict on every call: generate() mutates its argument.
    return sdk.auth().generate(dict(job.get("options") or {}))


def mint_raw_hs256(job):
    message = b64url(compact_json(job["header"])) + "." + b64url(compact_json(job["claims"]))
    mac = hmac.new(job["secret"].encode("utf-8"), message.encode("ascii"), hashlib.sha256)
    return message + "." + b64url(mac.digest())


MINTERS = {"jwt": mint_jwt, "ziggeo": mint_ziggeo, "raw_hs256": mint_raw_hs256}


def main():
    try:
        request = json.load(sys.stdin)
    except ValueError as error:
        sys.exit("client_tokens.py: stdin is not one JSON document: %s" % error)
    tokens = []
    for i, job in enumerate(request.get("jobs", [])):
        minter = MINTERS.get(job.get("kind"))
        if minter is None:
            sys.exit("client_tokens.py: job %d: unknown kind %r" % (i, job.get("kind")))
        try:
            tokens.append(minter(job))
        except Exception as error:  # a bad job: say which, and fail
            sys.exit("client_tokens.py: job %d (%s) failed: %r" % (i, job.get("kind"), error))
    json.dump(tokens, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
