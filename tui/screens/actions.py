"""Actions: the signed node actions, with a filter; create, edit (a new signed version), show
and revoke; and the two-person rule: an action with fewer distributor approvals than the site
policy asks shows "awaits 1 of 2", and a adds an approval with another distributor key."""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.widgets import Checkbox, DataTable, Footer, Input, Label

from airseal.appliance.service.records import ActionRecord, AwaitingApproval
from airseal.media.confusables import confusable_reason, escape_confusables
from airseal.tui.formatting import day, size, when
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.dialogs import FormDialog, FormField, TextDialog
from airseal.tui.widgets.nav import NavBar
from airseal.tui.widgets.tables import fill_table


def state_of(
    record: ActionRecord, now: datetime, awaiting: AwaitingApproval | None = None
) -> str:
    if awaiting is not None and awaiting.version == record.version and not record.revoked:
        return f"awaits {awaiting.count}"
    if record.revoked:
        return "revoked"
    if record.expired(now):
        return "expired"
    return "current"


def matches(record: ActionRecord, text: str) -> bool:
    if not text:
        return True
    haystack = " ".join(
        [
            record.id,
            record.name,
            record.os,
            record.mode,
            record.key_name,
            record.predicate.label,
            record.predicate.payload.name,
        ]
    ).lower()
    return all(word in haystack for word in text.lower().split())


def _awaiting_text(awaiting: list[AwaitingApproval]) -> str:
    if len(awaiting) == 1:
        return f"{awaiting[0].action_id} awaits approval ({awaiting[0].count}): a adds yours. "
    return f"{len(awaiting)} await approval (State column): a adds yours. "


def action_text(record: ActionRecord, now: datetime | None = None) -> str:
    """An action as the operator reads it: sections of labelled lines, labels as the CLI's
    flags name the fields (``action show --json`` prints the signed JSON itself)."""
    p = record.predicate
    lines: list[str] = []

    def section(title: str, rows: list[tuple[str, str | None]]) -> None:
        shown = [(label, value) for label, value in rows if value]
        if shown:
            lines.append(title)
            lines.extend(f"  {label:<12} {value}" for label, value in shown)
            lines.append("")

    state = state_of(record, now) if now is not None else None
    section(
        f"Action {record.id}, version {record.version}" + (f" ({state})" if state else ""),
        [
            ("Name", escape_confusables(p.name)),
            ("Description", escape_confusables(p.description)),
            ("Label", p.label),
            ("OS", p.os),
            ("Mode", p.mode),
            ("Key", record.key_name),
            ("Valid", f"{when(p.valid_from)} to {when(p.valid_until)} UTC"),
            ("Revoked", record.revoked),
        ],
    )
    intake = p.intake
    section(
        "File",
        [
            ("Name", escape_confusables(p.payload.name)),
            ("SHA-256", p.payload.sha256),
            ("Size", f"{size(p.payload.size)} ({p.payload.size} bytes)"),
            (
                "Intake",
                f"verified: {intake.method}" + (f" by {intake.signer}" if intake.signer else "")
                if intake.verified
                else "NOT verified (no vendor signature)",
            ),
        ],
    )
    c = p.conditions
    section(
        "Conditions (all must hold)",
        [
            ("If missing", "; ".join(c.if_missing)),
            ("If exists", "; ".join(c.if_exists)),
            ("Host", c.host),
            ("Group", c.group),
        ],
    )
    if not (c.if_missing or c.if_exists or c.host or c.group):
        lines.extend(["Conditions", "  none: every endpoint of this OS", ""])
    if p.execute is not None:
        e = p.execute
        section(
            "Execute",
            [
                ("Run", e.run or "the file itself"),
                ("Args", shlex.join(e.args) if e.args else "none"),
                ("Run as", e.run_as),
                ("Timeout", f"{e.timeout_seconds} s"),
                ("Reboot", e.reboot),
            ],
        )
    if p.download is not None:
        d = p.download
        section(
            "Download",
            [("Dest", d.dest), ("File mode", d.file_mode), ("Owner", d.owner)],
        )
    return "\n".join(lines).rstrip()


class ActionsScreen(AirsealScreen):
    AUTO_FOCUS = "#actions-table"
    BINDINGS: ClassVar[list[BindingType]] = [
        # priority: the app runs these itself, so keys typed right after wait until the form is
        # up (else they reach the table while the form opens, and are lost); never while typing
        Binding("n", "new_action", "New", priority=True),
        Binding("e", "edit_action", "Edit", priority=True),
        Binding("enter", "show_action", "Show", show=False),
        Binding("d", "revoke_action", "Revoke"),
        Binding("a", "approve_action", "Approve"),
        Binding("slash", "filter", "Filter"),
        Binding("v", "toggle_revoked", "Show revoked"),
        Binding("r", "refresh", "Refresh"),
    ]

    @dataclass
    class Loaded(Message):
        records: list[ActionRecord]
        awaiting: list[AwaitingApproval]

    @dataclass
    class Approved(Message):
        action_id: str
        key_name: str

    @dataclass
    class Revoked(Message):
        action_id: str
        versions: int

    def __init__(self) -> None:
        super().__init__(id="actions")
        self.records: list[ActionRecord] = []
        self.shown: list[ActionRecord] = []
        self.awaiting: dict[str, AwaitingApproval] = {}

    def compose(self) -> ComposeResult:
        yield NavBar("actions")
        with Horizontal(classes="toolbar"):
            yield Input(
                placeholder="/ filter by name, id, OS, mode, label, payload or key",
                id="filter",
                compact=True,
            )
            yield Checkbox("Show revoked", id="show-revoked")
        yield DataTable(id="actions-table", cursor_type="row", zebra_stripes=True)
        yield Label("", id="actions-status", classes="hint")
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(
            "Id", "Ver", "Name", "OS", "Mode", "Label", "Payload", "Key", "Valid until", "State"
        )
        self.load()
        # after this screen's first frame: the form an operator opens next is built meanwhile
        self.call_after_refresh(self._prepare_form)

    def _prepare_form(self) -> None:
        from airseal.tui.screens.action_form import prepare_new_action_form

        prepare_new_action_form(self.app)

    def on_screen_resume(self) -> None:
        self.load()

    def action_refresh(self) -> None:
        self.load()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        with self.context.open() as appliance:
            records = appliance.list_actions(include_revoked=True)
            awaiting = appliance.actions_awaiting_approval()
        self.post_message(self.Loaded(records, awaiting))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        self.records = message.records
        self.awaiting = {a.action_id: a for a in message.awaiting}
        self.refresh_bindings()
        self._fill()

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Approve is offered (and in the footer) only while an action awaits approval."""
        if action == "approve_action":
            return bool(self.awaiting)
        return True

    @on(Input.Changed, "#filter")
    @on(Checkbox.Changed, "#show-revoked")
    def _fill(self) -> None:
        text = self.query_one("#filter", Input).value
        with_revoked = self.query_one("#show-revoked", Checkbox).value
        now = self.context.now()
        table = self.query_one(DataTable)
        self.shown = [
            r for r in self.records if matches(r, text) and (with_revoked or not r.revoked)
        ]
        fill_table(
            table,
            (
                (
                    (
                        r.id,
                        str(r.version),
                        escape_confusables(r.name),
                        r.os,
                        r.mode,
                        r.predicate.label,
                        escape_confusables(r.predicate.payload.name),
                        r.key_name,
                        day(r.valid_until),
                        state_of(r, now, self.awaiting.get(r.id)),
                    ),
                    r.id,
                )
                for r in self.shown
            ),
        )
        hidden = len(self.records) - len(self.shown)
        deceptive = sum(
            1
            for r in self.shown
            if confusable_reason(r.name) or confusable_reason(r.predicate.payload.name)
        )
        self.query_one("#actions-status", Label).update(
            # first: on a narrow terminal the end of the line is cut
            (_awaiting_text(list(self.awaiting.values())) if self.awaiting else "")
            + f"{len(self.shown)} action(s) shown"
            + (f", {hidden} hidden" if hidden else "")
            + (
                ". n creates one."
                if not self.records
                else ". Enter shows, e edits (signs a new version), d revokes."
            )
            + (
                f" WARNING: {deceptive} action(s) have names with invisible, bidirectional or "
                "look-alike characters, shown escaped."
                if deceptive
                else ""
            )
        )

    def action_filter(self) -> None:
        self.query_one("#filter", Input).focus()

    def action_toggle_revoked(self) -> None:
        box = self.query_one("#show-revoked", Checkbox)
        box.value = not box.value

    @on(Input.Submitted, "#filter")
    def _filter_done(self) -> None:
        self.query_one(DataTable).focus()

    def selected(self) -> ActionRecord | None:
        table = self.query_one(DataTable)
        if not self.shown or table.row_count == 0:
            self.notify("Select an action first.", severity="warning")
            return None
        return self.shown[table.cursor_row]

    async def action_new_action(self) -> None:
        from airseal.tui.screens.action_form import new_action_form

        await self._open_form(new_action_form(self.app))

    async def action_edit_action(self) -> None:
        from airseal.tui.screens.action_form import ActionFormScreen

        record = self.selected()
        if record is None:
            return
        if record.revoked:
            self.notify(
                f"Action {record.id} is revoked: create a new action instead.", severity="warning"
            )
            return
        await self._open_form(ActionFormScreen(record))

    async def _open_form(self, form: AirsealScreen) -> None:
        """Open the form with the cursor already in its first field: keys typed ahead (before
        the form showed) land there, in order, not on this screen or nowhere."""
        await self.app.push_screen(form)
        form.focus_home()

    @on(DataTable.RowSelected)
    def action_show_action(self) -> None:
        record = self.selected()
        if record is not None:
            self.app.push_screen(
                TextDialog(
                    f"Action {record.id} v{record.version}: {escape_confusables(record.name)}",
                    action_text(record, self.context.now()),
                )
            )

    def action_revoke_action(self) -> None:
        record = self.selected()
        if record is None:
            return
        if record.revoked:
            self.notify(f"Action {record.id} is already revoked.")
            return

        def answered(values: dict[str, str] | None) -> None:
            if values:
                self.revoke(record.id, values["reason"] or "revoked by operator")

        self.app.push_screen(
            FormDialog(
                f"Revoke {record.id}: {escape_confusables(record.name)}",
                [FormField("reason", "Reason", "revoked by operator")],
                submit_label="Revoke",
                note="Every version is marked revoked; no later export carries it. Media "
                "already carried keep their copy until they expire.",
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def revoke(self, action_id: str, reason: str) -> None:
        with self.context.open() as appliance:
            count = appliance.revoke_action(action_id, reason)
        self.post_message(self.Revoked(action_id, count))

    @on(Revoked)
    def _revoked(self, message: Revoked) -> None:
        self.notify(f"Revoked {message.action_id} ({message.versions} version(s))", title="Revoked")
        self.load()

    def action_approve_action(self) -> None:
        record = self.selected()
        if record is None:
            return
        awaiting = self.awaiting.get(record.id)
        if awaiting is None or awaiting.version != record.version or record.revoked:
            self.notify(f"Action {record.id} awaits no approval.")
            return
        others = list(awaiting.approvers)
        if not others:
            self.notify(
                "No key here can add an approval: it takes another distributor's key that the "
                "site policy trusts for actions (Site trust, distributors).",
                severity="warning",
            )
            return
        approved_by = ", ".join(awaiting.approved_by) or "no distributor yet"

        def answered(values: dict[str, str] | None) -> None:
            if values:
                self.approve(record.id, values["key"])

        self.app.push_screen(
            FormDialog(
                f"Approve {record.id}: {escape_confusables(record.name)}",
                [FormField("key", "Your key", options=[(n, n) for n in others], required=True)],
                submit_label="Approve",
                note=f"{awaiting.count} approvals (signed by {approved_by}). Your key adds a "
                "signature to the action's envelope; endpoints count each distributor once.",
            ),
            answered,
        )

    @work(thread=True, exclusive=True, exit_on_error=False, group="task")
    def approve(self, action_id: str, key_name: str) -> None:
        with self.context.open(self.prompter) as appliance:
            appliance.approve_action(action_id, key_name)
        self.post_message(self.Approved(action_id, key_name))

    @on(Approved)
    def _approved(self, message: Approved) -> None:
        self.notify(f"{message.key_name} approved {message.action_id}", title="Approved")
        self.load()
