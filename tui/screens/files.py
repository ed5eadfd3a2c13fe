"""Files: the appliance store, and adding a distribution file through intake verification
(integrity check 1 of 3): a cosign signature and key, a key-based bundle, or a keyless bundle
with the expected identity and issuer. A refused file leaves nothing in the store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, DataTable, Footer, Input, Label, ProgressBar, Select, Static

from airseal.appliance.service.records import StoredFile, VendorSignature
from airseal.tui.errors import describe_error
from airseal.tui.formatting import day, size
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.nav import NavBar
from airseal.tui.widgets.tables import fill_table

METHODS = (
    ("no vendor signature", "none"),
    ("cosign signature + public key", "signature"),
    ("Sigstore bundle + public key", "bundle-key"),
    ("keyless bundle: identity + issuer", "keyless"),
)
FIELDS_BY_METHOD = {
    "none": (),
    "signature": ("signature", "key"),
    "bundle-key": ("bundle", "key"),
    "keyless": ("bundle", "identity", "issuer", "trusted-root"),
}
OPTIONAL_FIELDS = {"trusted-root"}


class FilesScreen(AirsealScreen):
    AUTO_FOCUS = "#path"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "add_file", "Add file"),
        Binding("ctrl+g", "sign_blob", "Sign a file"),
        Binding("r", "refresh", "Refresh"),
    ]

    @dataclass
    class Loaded(Message):
        files: list[StoredFile]

    @dataclass
    class Progress(Message):
        done: int
        total: int

    @dataclass
    class Added(Message):
        stored: StoredFile

    def __init__(self) -> None:
        super().__init__(id="files")

    def compose(self) -> ComposeResult:
        yield NavBar("files")
        yield Static("Stored files (newest first)", classes="section-title")
        yield DataTable(id="files-table", cursor_type="row", zebra_stripes=True)
        yield Static("Add a file", classes="section-title")
        with Vertical(id="add-form"):
            with Horizontal(classes="form-row"):
                yield Label("File", classes="form-label")
                yield Input(
                    placeholder="/media/usb/vendor/installer.tar.gz", id="path", compact=True
                )
            with Horizontal(classes="form-row"):
                yield Label("Name on media", classes="form-label")
                yield Input(placeholder="default: the file's name", id="name", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Verification", classes="form-label")
                yield Select(
                    list(METHODS), value="signature", allow_blank=False, id="method", compact=True
                )
            with Horizontal(classes="form-row", id="row-signature"):
                yield Label("Signature (.sig)", classes="form-label")
                yield Input(
                    placeholder="cosign detached signature, base64", id="signature", compact=True
                )
            with Horizontal(classes="form-row", id="row-bundle"):
                yield Label("Bundle", classes="form-label")
                yield Input(placeholder="vendor .sigstore.json", id="bundle", compact=True)
            with Horizontal(classes="form-row", id="row-key"):
                yield Label("Vendor key", classes="form-label")
                yield Input(
                    placeholder="PEM public key file, or a key name here", id="key", compact=True
                )
            with Horizontal(classes="form-row", id="row-identity"):
                yield Label("Identity", classes="form-label")
                yield Input(placeholder="certificate identity (SAN)", id="identity", compact=True)
            with Horizontal(classes="form-row", id="row-issuer"):
                yield Label("OIDC issuer", classes="form-label")
                yield Input(
                    placeholder="https://token.actions.githubusercontent.com",
                    id="issuer",
                    compact=True,
                )
            with Horizontal(classes="form-row", id="row-trusted-root"):
                yield Label("Trusted root", classes="form-label")
                yield Input(
                    placeholder="trusted_root.json (default: public-good, shipped)",
                    id="trusted-root",
                    compact=True,
                )
            with Horizontal(classes="toolbar"):
                yield Button("Verify and add", variant="primary", id="add", compact=True)
                yield ProgressBar(id="add-progress", show_eta=False)
            yield Static("", id="add-result", classes="result", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one(DataTable).add_columns(
            "Name", "SHA-256", "Size", "Verification", "Signer", "Added"
        )
        self._show_fields("signature")
        self.query_one("#add-result").display = False
        self.query_one("#add-progress").display = False
        self.load()

    def on_screen_resume(self) -> None:
        self.load()

    def action_refresh(self) -> None:
        self.load()

    def action_sign_blob(self) -> None:
        from airseal.tui.screens.sign_blob import SignBlobScreen

        self.app.push_screen(SignBlobScreen())

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load(self) -> None:
        with self.context.open() as appliance:
            files = appliance.list_files()
        self.post_message(self.Loaded(files))

    @on(Loaded)
    def _loaded(self, message: Loaded) -> None:
        table = self.query_one(DataTable)
        fill_table(
            table,
            (
                (
                    (
                        f.name,
                        f.sha256[:16] + "…",
                        size(f.size),
                        f.method if f.verified else "unverified",
                        (f.signer or "-")[:40],
                        day(f.added),
                    ),
                    f.sha256,
                )
                for f in message.files
            ),
        )

    # -- the form ---------------------------------------------------------------------------

    @on(Select.Changed, "#method")
    def _method_changed(self, event: Select.Changed) -> None:
        self._show_fields(str(event.value))

    def _show_fields(self, method: str) -> None:
        wanted = FIELDS_BY_METHOD.get(method, ())
        for field in ("signature", "bundle", "key", "identity", "issuer", "trusted-root"):
            self.query_one(f"#row-{field}").display = field in wanted

    def _value(self, field: str) -> str:
        return self.query_one(f"#{field}", Input).value.strip()

    def action_add_file(self) -> None:
        self._submit()

    @on(Input.Submitted, "#add-form Input")
    @on(Button.Pressed, "#add")
    def _submit(self) -> None:
        method = str(self.query_one("#method", Select).value)
        path = self._value("path")
        problems = []
        if not path:
            problems.append("give the file to add")
        elif not Path(path).expanduser().is_file():
            problems.append(f"{path} is not a file")
        for field in FIELDS_BY_METHOD[method]:
            value = self._value(field)
            if not value and field not in OPTIONAL_FIELDS:
                problems.append(f"{field.replace('-', ' ')} is needed for this verification")
            elif (
                value
                and field in ("signature", "bundle", "trusted-root")
                and not Path(value).expanduser().is_file()
            ):
                problems.append(f"{value} is not a file")
        if problems:
            self._result("; ".join(problems), ok=False, title="Not added")
            return
        values = {f: self._value(f) for f in FIELDS_BY_METHOD[method]}
        self.query_one("#add", Button).disabled = True
        bar = self.query_one("#add-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.add(Path(path).expanduser(), self._value("name") or None, method, values)

    @work(thread=True, exclusive=True, exit_on_error=False, group="add")
    def add(self, path: Path, name: str | None, method: str, values: dict[str, str]) -> None:
        def file(field: str) -> Path | None:
            return Path(values[field]).expanduser() if values.get(field) else None

        with self.context.open(self.prompter) as appliance:
            key = None
            if values.get("key"):
                key, _ = appliance.verification_key(values["key"])
            vendor = VendorSignature(
                signature=file("signature"),
                bundle=file("bundle"),
                key=key,
                identity=values.get("identity") or None,
                issuer=values.get("issuer") or None,
                trusted_root=file("trusted-root"),
            )
            total = path.stat().st_size
            done = 0
            step = max(total // 50, 1)
            mark = 0

            def advance(n: int) -> None:
                nonlocal done, mark
                done += n
                if done - mark >= step or done == total:
                    mark = done
                    self.post_message(self.Progress(done, total))

            stored = appliance.add_file(path, vendor, name=name, on_progress=advance)
        self.post_message(self.Added(stored))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.query_one("#add-progress", ProgressBar).update(
            total=message.total, progress=message.done
        )

    @on(Added)
    def _added(self, message: Added) -> None:
        s = message.stored
        check = f"verified ({s.method}, {s.signer})" if s.verified else "NOT verified"
        self._result(
            f"Added {s.name}  sha256 {s.sha256}  {s.size} bytes  {check}",
            ok=s.verified,
            title="Added" if s.verified else "Added without a vendor signature",
        )
        self.query_one("#path", Input).value = ""
        self.query_one("#name", Input).value = ""
        self.load()

    def worker_failed(self, name: str, error: BaseException) -> bool:
        if name != "add":
            return False
        text = describe_error(error)
        if text.internal:
            return False
        self._result(text.body, ok=False, title=f"Refused: {text.title}")
        return True

    def worker_done(self, name: str) -> None:
        if name == "add":
            self.query_one("#add", Button).disabled = False
            self.query_one("#add-progress").display = False

    def _result(self, text: str, *, ok: bool, title: str) -> None:
        box = self.query_one("#add-result", Static)
        box.border_title = title
        box.set_classes("result -ok" if ok else "result -failed")
        box.update(text)
        box.display = True
