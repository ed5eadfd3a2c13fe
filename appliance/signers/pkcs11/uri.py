"""A public key named by a PKCS#11 URI (RFC 7512), for verifying with a key on a token.

``--key 'pkcs11:token=Vendor%20HSM;object=release?module-path=/usr/lib/softhsm/libsofthsm2.so'``
names the token (label, or ``serial``), the key (``object`` label and/or ``id``, percent-encoded
bytes) and, optionally, the module; without ``module-path`` the module comes from ``--module`` or
``$AIRSEAL_PKCS11_MODULE``. Only the public key is read, in a read-only session without login:
``pin-value`` is refused (a PIN never goes in an argument) and no PIN is asked.

Hand-written because the parsing is small and python-pkcs11 has no URI parser; the attributes
used are RFC 7512's (``token``, ``serial``, ``object``, ``id``, ``type``, ``module-path``).
"""

from __future__ import annotations

import os
from typing import Final
from urllib.parse import unquote, unquote_to_bytes

from airseal.appliance.errors import UsageError
from airseal.appliance.signers.pkcs11.cryptoki import find_objects
from airseal.appliance.signers.pkcs11.keys import _public_key_from_object
from airseal.appliance.signers.pkcs11.sessions import open_session
from airseal.trustroot.keys import PublicKey, fingerprint

MODULE_ENV: Final = "AIRSEAL_PKCS11_MODULE"
_KNOWN: Final = {"token", "serial", "object", "id", "type", "manufacturer", "model",
                 "library-manufacturer", "library-description", "library-version", "slot-id",
                 "slot-description", "slot-manufacturer"}


def is_pkcs11_uri(value: str) -> bool:
    return value.lower().startswith("pkcs11:")


def parse_pkcs11_uri(uri: str) -> tuple[dict[str, str], dict[str, str], bytes | None]:
    """``(path attributes, query attributes, id bytes)``; values percent-decoded."""
    body = uri[len("pkcs11:"):]
    path, _, query = body.partition("?")
    names = {part.partition("=")[0] for part in query.split("&")}
    if names & {"pin-value", "pin-source"}:
        raise UsageError(
            "--key: the PKCS#11 URI carries a PIN (pin-value or pin-source); verification reads "
            "only the public key and needs no PIN, and a PIN never belongs in an argument"
        )
    uri = f"pkcs11:{path}"  # messages show the path part only
    attributes: dict[str, str] = {}
    key_id: bytes | None = None
    for part in filter(None, path.split(";")):
        name, sep, value = part.partition("=")
        if not sep:
            raise UsageError(f"--key {uri!r}: {part!r} is not NAME=VALUE (RFC 7512)")
        if name == "id":
            key_id = unquote_to_bytes(value)
            continue
        if name not in _KNOWN:
            raise UsageError(f"--key {uri!r}: unknown PKCS#11 URI attribute {name!r}")
        attributes[name] = unquote(value)
    queries: dict[str, str] = {}
    for part in filter(None, query.split("&")):
        name, _, value = part.partition("=")
        queries[name] = unquote(value)
    return attributes, queries, key_id


def public_key_from_uri(uri: str, module: str | None = None) -> tuple[PublicKey, str]:
    """The public key a PKCS#11 URI names, and a label for messages."""
    attributes, queries, key_id = parse_pkcs11_uri(uri)
    uri = uri.partition("?")[0]
    module_path = queries.get("module-path") or module or os.environ.get(MODULE_ENV)
    if not module_path:
        raise UsageError(
            f"--key {uri!r}: no PKCS#11 module",
            hint=f"add ?module-path=/path/to/module.so to the URI, pass --module, or set "
            f"{MODULE_ENV}",
        )
    selector = attributes.get("token") or attributes.get("serial")
    if not selector:
        raise UsageError(f"--key {uri!r}: name the token (token=LABEL or serial=SERIAL)")
    if "object" not in attributes and key_id is None:
        raise UsageError(f"--key {uri!r}: name the key (object=LABEL and/or id=%XX...)")
    import pkcs11

    wanted: dict[pkcs11.Attribute, object] = {
        pkcs11.Attribute.CLASS: pkcs11.ObjectClass.PUBLIC_KEY
    }
    if "object" in attributes:
        wanted[pkcs11.Attribute.LABEL] = attributes["object"]
    if key_id is not None:
        wanted[pkcs11.Attribute.ID] = key_id
    with open_session(module_path, selector, rw=False) as ts:
        found = find_objects(ts.session, wanted, ts.subject)
        if len(found) != 1:
            what = "no public key" if not found else f"{len(found)} public keys"
            raise UsageError(
                f"--key {uri!r}: {what} on {ts.subject} match",
                hint="check object= and id= (`airseal token list` shows the tokens)",
            )
        key = _public_key_from_object(found[0])
    return key, f"{uri} ({fingerprint(key)[:16]})"
