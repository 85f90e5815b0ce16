#!/usr/bin/env python3
"""Drive vidgate's admin API with Ziggeo's own Python server SDK (PyPI `ziggeo`).

Usage: ziggeo_admin.py BASE_URL APP_TOKEN PRIVATE_KEY

What the SDK does on the wire (ziggeo 2.30, ZiggeoConnect.py / ZiggeoAuthtokens.py):
- paths are `/v1/authtokens/` (create), `/v1/authtokens/<token>` (get, update, delete),
  appended to `config.server_api_url`;
- every request carries `Authorization: Basic base64(app_token:private_key)`;
- create and update are POSTs with an `application/x-www-form-urlencoded` body made by
  `urlencode(dict)`: every value goes through `str()`, so grants must be given as a JSON
  string (a dict would arrive as its Python repr) and bools arrive as `True`/`False`;
- delete is `POST /v1/authtokens/<token>?_method=DELETE` with an empty form body, and returns
  the raw response text rather than parsed JSON;
- response bodies are decoded as ASCII; any 3xx/4xx answer is replaced by
  `{"code": "<status>", "msg": "<reason phrase>"}` (the server's JSON body is dropped), and
  5xx answers are retried `config.resilience_factor` times.

The server URL is chosen in `Ziggeo.__init__` (from `ZiggeoConfig.server_api_url`, or a region
picked by the app token's prefix), so pointing the SDK elsewhere means replacing its
`connect` after construction.

Exits 0 after printing "ziggeo sdk: all checks passed", or non-zero naming the first mismatch.
"""

import json
import re
import sys
import time

try:
    from Ziggeo import Ziggeo
    from ZiggeoConnect import ZiggeoConnect
except ImportError as error:
    sys.exit(
        "the Ziggeo Python SDK is not installed (%s): "
        "run `pip install -r tests/python/requirements.txt`" % error
    )


def fail(message):
    sys.exit("ziggeo sdk: MISMATCH: " + message)


def check(condition, message):
    if not condition:
        fail(message)


def expect_equal(actual, expected, what):
    if actual != expected:
        fail("%s: expected %r, got %r" % (what, expected, actual))


def sdk(base_url, app_token, private_key):
    """A Ziggeo client whose server API is `base_url`."""
    ziggeo = Ziggeo(app_token, private_key)
    ziggeo.config.server_api_url = base_url
    # Fail fast instead of retrying a 5xx five times.
    ziggeo.config.resilience_factor = 1
    ziggeo.connect = ZiggeoConnect(ziggeo, base_url)
    return ziggeo


def expect_status(result, status, what):
    """The SDK turns a 3xx/4xx answer into {"code": "<status>", "msg": ...}."""
    if isinstance(result, str):
        result = json.loads(result)
    expect_equal(result.get("code") if isinstance(result, dict) else result, str(status), what)


def grant(resources=(), session_owned=False, all_=False):
    return {"resources": list(resources), "session_owned": session_owned, "all": all_}


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    base_url, app_token, private_key = sys.argv[1:]
    ziggeo = sdk(base_url, app_token, private_key)
    tokens = ziggeo.authtokens()
    expires = int(time.time()) + 3600

    # Create: grants as a JSON string (non-ASCII kept, so the form carries UTF-8), integers and
    # bools as Python values, which urlencode writes as "3" and "True".
    created = tokens.create({
        "token": "sdk-kept",
        "grants": json.dumps(
            {"read": {"resources": ["v1", "vid\u00e9o"]}, "create": "all"},
            ensure_ascii=False,
        ),
        "session_limit": 3,
        "usage_expiration_time": 600,
        "expiration_date": expires,
        "volatile": False,
        "hidden": False,
    })
    check(isinstance(created, dict) and "code" not in created, "create failed: %r" % (created,))
    check(isinstance(created.get("created_at"), int), "created_at: %r" % (created,))
    expect_equal(created, {
        "token": "sdk-kept",
        "grants": {"read": grant(["v1", "vid\u00e9o"]), "create": grant(all_=True)},
        "expiration_date": expires,
        "usage_expiration_time": 600,
        "session_limit": 3,
        "volatile": False,
        "hidden": False,
        "sessions_created": 0,
        "created_at": created["created_at"],
    }, "created token")

    # Exactly what Ziggeo's own demo (demos/authtokens_create.py) sends: the id is generated.
    generated = tokens.create({"session_limit": 10, "grants": '{"read": "all"}'})
    check(re.fullmatch(r"[0-9a-f]{32}", generated.get("token", "")) is not None,
          "generated id: %r" % (generated,))
    expect_equal(generated["grants"], {"read": grant(all_=True)}, "demo grants")
    expect_equal(generated["session_limit"], 10, "demo session_limit")
    deleted = json.loads(tokens.delete(generated["token"]))
    expect_equal(deleted["token"], generated["token"], "delete of the generated token")

    # Refusals reach the SDK as their status only.
    expect_status(tokens.create({"token": "sdk-kept", "grants": '{"read": "all"}'}), 409,
                  "create with a taken id")
    expect_status(tokens.create({"grants": {"read": "all"}}), 400,
                  "grants given as a dict (sent as its Python repr)")
    expect_status(tokens.create({"session_limit": 2}), 400, "create without grants")
    expect_status(tokens.create({"grants": '{"read": {"resources": []}}', "volatile": True}),
                  422, "an empty volatile token")

    # Read.
    expect_equal(tokens.get("sdk-kept"), created, "get after create")
    expect_status(tokens.get("sdk-nobody"), 404, "get of an unknown token")

    # Update: partial; an empty value clears an optional field.
    updated = tokens.update("sdk-kept", {
        "session_limit": 5,
        "usage_expiration_time": "",
        "hidden": True,
    })
    expected = dict(created, session_limit=5, usage_expiration_time=None, hidden=True)
    expect_equal(updated, expected, "updated token")
    expect_equal(tokens.get("sdk-kept"), expected, "get after update")
    expect_status(tokens.update("sdk-kept", {"sessions_created": 1}), 400,
                  "update of an output-only field")
    expect_status(tokens.update("sdk-kept", {"token": "renamed"}), 400, "update of the id")
    expect_status(tokens.update("sdk-nobody", {"hidden": False}), 404,
                  "update of an unknown token")
    expect_equal(tokens.get("sdk-kept"), expected, "get after refused updates")

    # Delete: POST ?_method=DELETE; the SDK returns the raw text.
    doomed = tokens.create({"token": "sdk-deleted", "grants": '{"destroy": {"session_owned": true}}'})
    expect_equal(doomed["grants"], {"destroy": grant(session_owned=True)}, "doomed grants")
    raw = tokens.delete("sdk-deleted")
    check(isinstance(raw, str), "delete returns text: %r" % (raw,))
    expect_equal(json.loads(raw), doomed, "deleted object")
    expect_status(tokens.get("sdk-deleted"), 404, "get after delete")
    expect_status(tokens.delete("sdk-deleted"), 404, "second delete")

    # A volatile token emptied by an update: 200 with the updated object, then gone.
    volatile = tokens.create({
        "token": "sdk-volatile",
        "grants": '{"read": {"resources": ["only"]}}',
        "volatile": "true",
    })
    expect_equal(volatile["volatile"], True, "volatile flag")
    emptied = tokens.update("sdk-volatile", {"grants": '{"read": {"resources": []}}'})
    expect_equal(emptied, dict(volatile, grants={"read": grant()}), "emptied volatile token")
    expect_status(tokens.get("sdk-volatile"), 404, "get of the emptied volatile token")

    # Wrong credentials.
    intruder = sdk(base_url, app_token, private_key + "-wrong").authtokens()
    expect_status(intruder.get("sdk-kept"), 401, "get with a wrong private key")
    impostor = sdk(base_url, app_token + "-other", private_key).authtokens()
    expect_status(impostor.get("sdk-kept"), 401, "get with a wrong app token")
    expect_status(impostor.update("sdk-kept", {"hidden": False}), 401,
                  "update with a wrong app token")
    expect_equal(tokens.get("sdk-kept"), expected, "get after refused intruders")

    print("ziggeo sdk: all checks passed")


if __name__ == "__main__":
    main()
