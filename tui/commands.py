"""The command palette (ctrl+p): every screen and every operator action, by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from textual.command import DiscoveryHit, Hit, Hits, Provider

from airseal.tui.navigation import PLACES

if TYPE_CHECKING:
    from airseal.tui.app import AirsealApp


@dataclass(frozen=True)
class PaletteCommand:
    title: str
    help: str
    mode: str
    actions: tuple[str, ...] = ()
    """Actions run in turn on the screen on top after each one (e.g. open PIV, then info)."""


def _go(place_mode: str, title: str) -> PaletteCommand:
    return PaletteCommand(f"Go to {title}", f"Open the {title} screen", place_mode)


PALETTE: tuple[PaletteCommand, ...] = (
    *(_go(p.mode, p.title) for p in PLACES),
    PaletteCommand(
        "Initialise the appliance home",
        "Create the home (database, keys, file store) where none is",
        "dashboard",
        ("init_home",),
    ),
    PaletteCommand(
        "Verify the audit chain", "Walk the hash chain of the audit log", "audit", ("verify",)
    ),
    PaletteCommand(
        "Generate a file key",
        "An encrypted cosign-format key in the home",
        "keys",
        ("generate_key",),
    ),
    PaletteCommand(
        "Import a key file", "cosign or PEM private key, re-encrypted", "keys", ("import_key",)
    ),
    PaletteCommand(
        "Export a public key", "Write the selected key's cosign.pub", "keys", ("export_public_key",)
    ),
    PaletteCommand(
        "Show a key", "Fingerprint, reference and public key PEM", "keys", ("show_key",)
    ),
    PaletteCommand("PKCS#11 tokens", "The tokens a PKCS#11 module sees", "keys", ("tokens",)),
    PaletteCommand(
        "PKCS#11: list tokens",
        "List the tokens of the module typed in",
        "keys",
        ("tokens", "list_tokens"),
    ),
    PaletteCommand(
        "PKCS#11: generate a key on a token",
        "EC P-256, non-extractable",
        "keys",
        ("tokens", "generate_token_key"),
    ),
    PaletteCommand(
        "PKCS#11: register a token key",
        "An existing key, by label",
        "keys",
        ("tokens", "register_token_key"),
    ),
    PaletteCommand("YubiKey PIV", "PIV application of an attached YubiKey", "keys", ("piv",)),
    PaletteCommand(
        "Site trust",
        "Site TUF roles, expiries, distributors, pending signing events",
        "keys",
        ("site_trust",),
    ),
    PaletteCommand(
        "Site trust: sign pending events",
        "Add the signatures of the keys on hand (the ceremony)",
        "keys",
        ("site_trust", "sign_pending"),
    ),
    PaletteCommand("YubiKey: info", "Serial, firmware, tries left, slots", "keys", ("piv", "info")),
    PaletteCommand(
        "YubiKey: rescan", "Look for attached YubiKeys again", "keys", ("piv", "scan")
    ),
    PaletteCommand(
        "YubiKey: generate a key",
        "In a slot, with PIN and touch policies",
        "keys",
        ("piv", "generate"),
    ),
    PaletteCommand(
        "YubiKey: attestation", "Verify the slot's attestation chain", "keys", ("piv", "attest")
    ),
    PaletteCommand(
        "YubiKey: register a slot as a key", "Sign with the slot's key", "keys", ("piv", "register")
    ),
    PaletteCommand(
        "YubiKey: change PIN", "Old PIN, then the new one twice", "keys", ("piv", "change_pin")
    ),
    PaletteCommand(
        "YubiKey: change PUK", "Old PUK, then the new one twice", "keys", ("piv", "change_puk")
    ),
    PaletteCommand(
        "YubiKey: unblock PIN", "Set a new PIN with the PUK", "keys", ("piv", "unblock_pin")
    ),
    PaletteCommand(
        "YubiKey: random management key",
        "Stored PIN-protected on the YubiKey",
        "keys",
        ("piv", "management_key"),
    ),
    PaletteCommand(
        "YubiKey: reset PIV",
        "Erase every PIV key (asks for confirmation)",
        "keys",
        ("piv", "reset"),
    ),
    PaletteCommand(
        "Add a file", "Intake with vendor signature verification", "files", ("add_file",)
    ),
    PaletteCommand(
        "Sign a file (sign-blob)",
        "A cosign signature and a Sigstore bundle, with a key here",
        "files",
        ("sign_blob",),
    ),
    PaletteCommand(
        "Site configuration (config set)",
        "intake.require-signature, export.valid-days, action.valid-days",
        "dashboard",
        ("settings",),
    ),
    PaletteCommand(
        "Lock the unlocked keys",
        "Forget every key password typed in this session",
        "dashboard",
        ("app.lock_keys",),
    ),
    PaletteCommand("New action", "Create and sign a node action", "actions", ("new_action",)),
    PaletteCommand("Edit the selected action", "Sign a new version", "actions", ("edit_action",)),
    PaletteCommand("Show the selected action", "Its signed fields", "actions", ("show_action",)),
    PaletteCommand(
        "Revoke the selected action", "No later export carries it", "actions", ("revoke_action",)
    ),
    PaletteCommand("Filter actions", "By name, id, OS, mode or label", "actions", ("filter",)),
    PaletteCommand(
        "Approve the selected action",
        "Add your distributor signature (two-person rule)",
        "actions",
        ("approve_action",),
    ),
    PaletteCommand(
        "Show or hide revoked actions",
        "Revoked actions are hidden by default",
        "actions",
        ("toggle_revoked",),
    ),
    PaletteCommand(
        "Export to media", "Write the selected actions to the media", "export", ("export",)
    ),
    PaletteCommand("Rescan media", "Look for mounted removable media", "export", ("rescan",)),
    PaletteCommand(
        "Export: type the media path", "Any folder or mount point", "export", ("media_path",)
    ),
    PaletteCommand(
        "Export: select all or no actions", "Toggle every action", "export", ("toggle_all",)
    ),
    PaletteCommand(
        "Check media", "The courier's check: complete and undamaged?", "check", ("check",)
    ),
    PaletteCommand(
        "Media check: rescan media", "Look for mounted removable media", "check", ("rescan",)
    ),
    PaletteCommand(
        "Import receipts",
        "Verify and store the agents' receipts from media",
        "receipts",
        ("import_receipts",),
    ),
    PaletteCommand(
        "Receipts: type the media path", "Any folder or mount point", "receipts", ("media_path",)
    ),
    PaletteCommand(
        "Receipts: rescan media", "Look for mounted removable media", "receipts", ("rescan",)
    ),
    PaletteCommand("Filter the audit log", "By action, subject or actor", "audit", ("filter",)),
    PaletteCommand(
        "Search the transparency log", "By digest, action id, subject or index", "log", ("search",)
    ),
    PaletteCommand(
        "Verify the transparency log",
        "Recompute every entry, tile and the latest checkpoint",
        "log",
        ("verify",),
    ),
)


class AirsealCommands(Provider):
    """Every screen and action of the app, matched on its title."""

    @property
    def airseal(self) -> AirsealApp:
        return cast("AirsealApp", self.app)

    def _runner(self, command: PaletteCommand) -> Callable[[], Any]:
        return partial(self.airseal.run_palette_command, command)

    async def discover(self) -> Hits:
        for command in PALETTE:
            yield DiscoveryHit(command.title, self._runner(command), help=command.help)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for command in PALETTE:
            score = matcher.match(command.title)
            if score > 0:
                yield Hit(
                    score,
                    matcher.highlight(command.title),
                    self._runner(command),
                    help=command.help,
                )
