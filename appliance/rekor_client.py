"""`--rekor-url`: log a signature in a site's Rekor (v1 or v2 API) instead of the embedded log.

Rekor v1: the client POSTs a ``hashedrekord`` 0.0.1 (message signatures) or ``dsse`` 0.0.1
(DSSE envelopes) proposed entry to ``<url>/api/v1/log/entries``. Rekor v2 (chosen only when the
site's signing config lists that Rekor with ``majorApiVersion`` 2, see
:func:`rekor_from_signing_config`): a ``CreateEntryRequest`` to ``<url>/api/v2/log/entries``
(:mod:`airseal.trustroot.tlog.rekor_v2`), answered with a ``0.0.2`` ``TransparencyLogEntry``
that has no SET. Either answer is accepted only once it verifies against a log key known
beforehand: ``--rekor-key`` (PEM), else the ``tlogs`` entry of the appliance's trusted root
whose ``baseUrl`` is that URL. The SET (v1 only), the checkpoint signature and origin, the
inclusion proof and that the body records this very signature are all checked before the entry
is stored in the bundle's ``tlogEntries``. Fails closed with a distinct error for an unreachable
log, a timeout, an HTTP refusal and an answer that does not verify; nothing is stored then.

``urllib`` is imported only when an entry is sent (the CLI's startup stays light); proxies from
the environment are not used: the appliance talks to the site's log directly.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from airseal.appliance.errors import ApplianceError
from airseal.trustroot.errors import LogProofError, VerificationError
from airseal.trustroot.keys import PublicKey
from airseal.trustroot.tlog import entries, rekor_api

TIMEOUT_SECONDS = 30.0
"""Per request; Rekor v2 answers only once a checkpoint includes the entry (rekor-tiles asks
clients for at least 20 s)."""
SIGNING_CONFIG_MEDIA_TYPE = "application/vnd.dev.sigstore.signingconfig.v0.2+json"
MAX_SIGNING_CONFIG_BYTES = 1024 * 1024
API_VERSIONS = (1, 2)
MAX_ERROR_BYTES = 16 * 1024
_URL = re.compile(r"^(https?)://([A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?/?$")


class RekorError(ApplianceError):
    title = "Rekor"
    check = "rekor"


class RekorUnreachable(RekorError):
    title = "Rekor unreachable"
    hint = "check --rekor-url and that the site's Rekor is up and reachable from the appliance"


class RekorRefused(RekorError):
    title = "Rekor refused the entry"
    hint = "the log answered with an error; its message is above"


class RekorTimeout(RekorUnreachable):
    title = "Rekor did not answer in time"
    check = "rekor.timeout"
    hint = ("nothing was stored: check that the site's Rekor is up (a Rekor v2 answers once "
            "its next checkpoint is out) and sign again")


class SigningConfigInvalid(RekorError):
    title = "Signing config unusable"
    check = "rekor.signing-config"
    hint = ("give the site's signing_config.json (media type "
            f"{SIGNING_CONFIG_MEDIA_TYPE}) listing this Rekor in rekorTlogUrls")


class RekorAnswerInvalid(RekorError, VerificationError):
    title = "Rekor answer does not verify"
    check = "rekor.verify"
    hint = (
        "nothing was stored: check that --rekor-key (or the trusted root's tlogs entry) is this "
        "log's key; otherwise the log or the network altered the answer"
    )


class RekorKeyUnknown(RekorError):
    title = "Rekor log key unknown"
    hint = (
        "give the log's public key with --rekor-key FILE, or import the site's trusted root "
        "naming this log (`airseal trustroot import`)"
    )


@dataclass(frozen=True)
class RekorTarget:
    url: str
    """``scheme://host[:port]``, no trailing slash."""
    key: PublicKey
    name: str | None
    """The log's signer name (its ``baseUrl`` host) when known from a trusted root."""
    timeout: float = TIMEOUT_SECONDS
    api_version: int = 1
    """1: ``/api/v1/log/entries``; 2: ``/api/v2/log/entries`` (from the site's signing config)."""


def normalise_url(url: str) -> str:
    match = _URL.match(url.strip())
    if match is None or (match.group(3) and int(match.group(3)) > 65535):
        raise ValueError(
            f"{url!r} is not an http(s) URL of a log (scheme://host[:port], no path)"
        )
    scheme, host, port = match.group(1), match.group(2).lower(), match.group(3)
    default = {"http": "80", "https": "443"}[scheme]
    return f"{scheme}://{host}" + (f":{port}" if port and port != default else "")


def key_from_trusted_root(document: bytes, url: str, now: datetime) -> tuple[PublicKey, str]:
    """The key and signer name of the ``tlogs`` entry whose ``baseUrl`` is ``url``, valid now."""
    from urllib.parse import urlsplit

    from cryptography.hazmat.primitives.serialization import load_der_public_key

    from airseal.trustroot.keys import load_public_key, spki_pem

    try:
        tlogs = json.loads(document).get("tlogs") or []
    except (ValueError, AttributeError):
        raise RekorKeyUnknown("the trusted root in use is not a JSON object") from None
    for tlog in tlogs:
        try:
            if normalise_url(str(tlog.get("baseUrl", ""))) != url:
                continue
            public = tlog["publicKey"]
            valid = public.get("validFor") or {}
            end = valid.get("end")
            if end and datetime.fromisoformat(end.replace("Z", "+00:00")) < now:
                continue
            der = base64.b64decode(public["rawBytes"], validate=True)
            key = load_public_key(spki_pem(load_der_public_key(der)))  # type: ignore[arg-type]
        except (ValueError, KeyError, TypeError, AttributeError):
            continue
        return key, urlsplit(url).netloc
    raise RekorKeyUnknown(f"the trusted root in use names no current log at {url}")


def _utc(text: Any, what: str) -> datetime:
    from datetime import UTC

    try:
        moment = datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        raise SigningConfigInvalid(f"{what} is not an RFC 3339 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def rekor_from_signing_config(document: bytes, url: str | None, now: datetime) -> tuple[str, int]:
    """(URL, major API version) of the Rekor a Sigstore signing config (v0.2) chooses.

    Its ``rekorTlogUrls`` services valid ``now`` whose ``majorApiVersion`` is 1 or 2; with
    ``url`` (normalised) only that service. As the spec says: the highest supported API version,
    then the first listed. A config asking for entries in more than one log (``rekorTlogConfig``
    ``ALL`` over several services, or ``EXACT`` with a count above 1) is refused: the appliance
    logs each signature in one Rekor."""
    if len(document) > MAX_SIGNING_CONFIG_BYTES:
        raise SigningConfigInvalid(f"the signing config is larger than "
                                   f"{MAX_SIGNING_CONFIG_BYTES} bytes")
    try:
        config = json.loads(document)
        media_type = config.get("mediaType")
        services = config.get("rekorTlogUrls") or []
        selector = config.get("rekorTlogConfig") or {}
    except (ValueError, AttributeError):
        raise SigningConfigInvalid("the signing config is not a JSON object") from None
    if media_type != SIGNING_CONFIG_MEDIA_TYPE:
        raise SigningConfigInvalid(f"the signing config's mediaType is {str(media_type)[:80]!r}, "
                                   f"expected {SIGNING_CONFIG_MEDIA_TYPE}")
    if not isinstance(services, list) or not isinstance(selector, dict):
        raise SigningConfigInvalid("rekorTlogUrls is not a list or rekorTlogConfig not an object")
    usable: list[tuple[int, int, str]] = []
    for position, service in enumerate(services):
        what = f"rekorTlogUrls[{position}]"
        if not isinstance(service, dict):
            raise SigningConfigInvalid(f"{what} is not an object")
        try:
            base = normalise_url(str(service.get("url", "")))
        except ValueError as exc:
            raise SigningConfigInvalid(f"{what}.url: {exc}") from None
        version = service.get("majorApiVersion")
        valid = service.get("validFor") or {}
        if not isinstance(valid, dict) or "start" not in valid:
            raise SigningConfigInvalid(f"{what}.validFor.start is missing")
        if _utc(valid["start"], f"{what}.validFor.start") > now or (
            valid.get("end") and _utc(valid["end"], f"{what}.validFor.end") <= now
        ):
            continue
        if version in API_VERSIONS and not isinstance(version, bool) and base == (url or base):
            usable.append((-int(version), position, base))
    kind, count = selector.get("selector", "ANY"), selector.get("count", 1)
    if (kind == "ALL" and len({base for _, _, base in usable}) > 1) or (
        kind == "EXACT" and count != 1
    ):
        raise SigningConfigInvalid(f"the signing config asks for entries in {kind} "
                                   f"{count if kind == 'EXACT' else 'listed'} logs; the "
                                   "appliance logs each signature in one Rekor")
    if not usable:
        where = f"{url} among " if url else ""
        raise SigningConfigInvalid(f"no Rekor {where}the signing config's rekorTlogUrls is "
                                   "valid now with API version 1 or 2")
    version, _, base = min(usable)
    return base, -version


def listed_rekors(document: bytes) -> list[tuple[str, Any]]:
    """(normalised URL, ``majorApiVersion`` as given) of each ``rekorTlogUrls`` service of a
    signing config already checked by :func:`rekor_from_signing_config` (none when unreadable)."""
    try:
        services = json.loads(document).get("rekorTlogUrls") or []
    except (ValueError, AttributeError):
        return []
    listed = []
    for service in services if isinstance(services, list) else []:
        try:
            listed.append((normalise_url(str(service.get("url", ""))),
                           service.get("majorApiVersion")))
        except (ValueError, AttributeError):
            continue
    return listed


# -- the target in effect for the signing in progress -------------------------------------------

_TARGET: ContextVar[RekorTarget | None] = ContextVar("airseal_rekor_target", default=None)


def current_target() -> RekorTarget | None:
    """Where entries go instead of the embedded log, if a front end chose a Rekor."""
    return _TARGET.get()


@contextmanager
def rekor_session(target: RekorTarget | None) -> Iterator[None]:
    token = _TARGET.set(target)
    try:
        yield
    finally:
        _TARGET.reset(token)


# -- sending ------------------------------------------------------------------------------------


def proposed_entry(bundle: dict[str, Any], public_key: PublicKey) -> dict[str, Any]:
    """The Rekor v1 proposed entry for a bundle's signature."""
    try:
        if "messageSignature" in bundle:
            sig = bundle["messageSignature"]
            return rekor_api.proposed_hashedrekord(
                base64.b64decode(sig["messageDigest"]["digest"]),
                base64.b64decode(sig["signature"]),
                public_key,
            )
        envelope = bundle["dsseEnvelope"]
    except (KeyError, TypeError, ValueError) as exc:
        raise RekorError(f"the bundle to log lacks {exc}") from None
    canonical = json.dumps(envelope, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return rekor_api.proposed_dsse(canonical, public_key)


def _unreachable(url: str, exc: BaseException, timeout: float) -> RekorError:
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
        return RekorTimeout(f"{url} did not answer within {timeout:g} s")
    return RekorUnreachable(f"{url}: {reason}")


def _post(target: RekorTarget, path: str, payload: dict[str, Any]) -> tuple[int, bytes]:
    import urllib.error
    import urllib.request

    request = urllib.request.Request(  # noqa: S310 - the URL is http(s), see normalise_url
        target.url + path,
        data=json.dumps(payload).encode("utf-8"),
        headers={"Content-Type": "application/json", "Accept": "application/json",
                 "User-Agent": "airseal"},
        method="POST",
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=target.timeout) as response:
            return response.status, response.read(rekor_api.MAX_RESPONSE_BYTES + 1)
    except urllib.error.HTTPError as exc:
        body = exc.read(MAX_ERROR_BYTES)
        if exc.code == 409 and exc.headers.get("Location"):
            return 409, exc.headers["Location"].encode("utf-8")
        raise RekorRefused(
            f"{target.url}{path} answered HTTP {exc.code}: {_error_message(body)}"
        ) from None
    except (urllib.error.URLError, OSError) as exc:
        raise _unreachable(target.url + path, exc, target.timeout) from None


def _get(target: RekorTarget, location: str) -> bytes:
    import urllib.error
    import urllib.request
    from urllib.parse import urljoin, urlsplit

    url = urljoin(target.url + "/", location)
    if normalise_url(f"{urlsplit(url).scheme}://{urlsplit(url).netloc}") != target.url:
        raise RekorAnswerInvalid(f"the log pointed to another host ({url[:200]})")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(url, timeout=target.timeout) as response:
            return response.read(rekor_api.MAX_RESPONSE_BYTES + 1)  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        message = _error_message(exc.read(MAX_ERROR_BYTES))
        raise RekorRefused(f"{url} answered HTTP {exc.code}: {message}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise _unreachable(url, exc, target.timeout) from None


def _error_message(body: bytes) -> str:
    try:
        data = json.loads(body)
        if isinstance(data, dict) and isinstance(data.get("message"), str):
            return str(data["message"])[:500]
    except ValueError:
        pass
    text = body.decode("utf-8", "replace").strip()
    return text[:500] or "(no message)"


def log_bundle(target: RekorTarget, bundle_json: bytes, public_key: PublicKey) -> entries.TlogEntry:
    """Send the bundle's signature to the Rekor and return its verified entry."""
    bundle = json.loads(bundle_json)
    if target.api_version == 2:
        return _log_bundle_v2(target, bundle, public_key)
    status, raw = _post(target, "/api/v1/log/entries", proposed_entry(bundle, public_key))
    if status == 409:  # already logged: fetch the existing entry, verified the same way
        raw = _get(target, raw.decode("utf-8"))
    elif status != 201:
        raise RekorRefused(f"{target.url} answered HTTP {status}, expected 201 Created")
    if len(raw) > rekor_api.MAX_RESPONSE_BYTES:
        raise RekorAnswerInvalid(f"the answer is larger than {rekor_api.MAX_RESPONSE_BYTES} bytes")
    try:
        entry = rekor_api.parse_log_entry(json.loads(raw))
        rekor_api.verify_rekor_entry(
            entry, log_key=target.key, name=target.name,
            signed=entries.signed_content_of_bundle(bundle),
        )
    except ValueError:
        raise RekorAnswerInvalid(f"{target.url} answered with something that is not JSON") from None
    except LogProofError as exc:
        raise RekorAnswerInvalid(
            f"{target.url}: {exc.detail}", check=f"rekor.verify.{exc.check}"
        ) from None
    return entry


V2_PATH = "/api/v2/log/entries"


def _log_bundle_v2(target: RekorTarget, bundle: Any, public_key: PublicKey) -> entries.TlogEntry:
    """Rekor v2: a ``CreateEntryRequest``, a ``TransparencyLogEntry`` verified before use."""
    from airseal.trustroot.tlog import rekor_v2

    url = target.url + V2_PATH
    try:
        request = rekor_v2.request_for_bundle(bundle, public_key)
    except LogProofError as exc:
        raise RekorError(f"{url}: {exc.detail}", check=exc.check, hint=exc.hint) from None
    status, raw = _post(target, V2_PATH, request)
    if status not in (200, 201):
        raise RekorRefused(f"{url} answered HTTP {status}, expected 201 Created")
    if len(raw) > rekor_api.MAX_RESPONSE_BYTES:
        raise RekorAnswerInvalid(f"{url}: the answer is larger than "
                                 f"{rekor_api.MAX_RESPONSE_BYTES} bytes")
    try:
        entry = rekor_v2.parse_transparency_log_entry(json.loads(raw))
        rekor_v2.verify_entry(entry, log_key=target.key, name=target.name,
                              signed=entries.signed_content_of_bundle(bundle))
    except ValueError:
        raise RekorAnswerInvalid(f"{url} answered with something that is not JSON") from None
    except LogProofError as exc:
        raise RekorAnswerInvalid(f"{url}: {exc.detail}", check=f"rekor.verify.{exc.check}") \
            from None
    return entry
