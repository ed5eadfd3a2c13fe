"""Sign a file (``airseal sign-blob``): a cosign detached signature and a Sigstore bundle,
written next to the file unless told where. The file is streamed (any size); the signature files
are written atomically, only once signing succeeded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.message import Message
from textual.widgets import Button, Footer, Input, Label, ProgressBar, Select, Static

from airseal.tui.errors import describe_error
from airseal.tui.formatting import size
from airseal.tui.screens.base import AirsealScreen
from airseal.tui.widgets.nav import NavBar

SIGNATURE_SUFFIX = ".sig"
BUNDLE_SUFFIX = ".sigstore.json"


def default_output(path: Path, suffix: str) -> Path:
    return path.with_name(path.name + suffix)


class SignBlobScreen(AirsealScreen):
    AUTO_FOCUS = "#blob-path"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "sign", "Sign"),
        Binding("escape", "back", "Back"),
    ]

    @dataclass
    class Keys(Message):
        keys: list[Any]

    @dataclass
    class Progress(Message):
        done: int
        total: int

    @dataclass
    class Signed(Message):
        result: Any
        signature: Path
        bundle: Path

    def __init__(self) -> None:
        super().__init__(id="sign-blob")

    def compose(self) -> ComposeResult:
        yield NavBar("files")
        yield Static("Sign a file (sign-blob)", classes="section-title")
        with Vertical(id="sign-form"):
            with Horizontal(classes="form-row"):
                yield Label("File", classes="form-label")
                yield Input(placeholder="the file to sign", id="blob-path", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Key", classes="form-label")
                yield Select[str]([], prompt="signing key", id="blob-key", compact=True)
            with Horizontal(classes="form-row"):
                yield Label("Output signature", classes="form-label")
                yield Input(
                    placeholder=f"default: FILE{SIGNATURE_SUFFIX}",
                    id="blob-signature",
                    compact=True,
                )
            with Horizontal(classes="form-row"):
                yield Label("Bundle", classes="form-label")
                yield Input(
                    placeholder=f"default: FILE{BUNDLE_SUFFIX}", id="blob-bundle", compact=True
                )
        with Horizontal(classes="toolbar"):
            yield Button("Sign", variant="primary", id="sign", compact=True)
            yield Button("Back", id="back", compact=True)
            yield ProgressBar(id="sign-progress", show_eta=False)
        yield Static(
            "Enter in a field signs. Existing signature and bundle files are replaced.",
            classes="hint",
        )
        yield Static("", id="sign-result", classes="result", markup=False)
        yield Footer()

    def on_mount(self) -> None:
        self.query_one("#sign-result").display = False
        self.query_one("#sign-progress").display = False
        self.load_keys()

    @work(thread=True, exclusive=True, exit_on_error=False, group="load")
    def load_keys(self) -> None:
        with self.context.open() as appliance:
            keys = appliance.list_keys()
        self.post_message(self.Keys(keys))

    @on(Keys)
    def _keys(self, message: Keys) -> None:
        select = self.query_one("#blob-key", Select)
        select.set_options(
            [(f"{k.name} ({k.backend}, {k.algorithm})", k.name) for k in message.keys]
        )
        if message.keys:
            select.value = message.keys[0].name
        else:
            self._result("No signing key: generate one on the Keys screen (2).", ok=False)

    def _path(self, field: str) -> Path | None:
        value = self.query_one(f"#{field}", Input).value.strip()
        return Path(value).expanduser() if value else None

    @on(Input.Submitted, "#sign-form Input")
    @on(Button.Pressed, "#sign")
    def action_sign(self) -> None:
        path = self._path("blob-path")
        key = self.query_one("#blob-key", Select).value
        if path is None or not path.is_file():
            self._result(f"{path or 'Nothing'} is not a file: give the file to sign.", ok=False)
            self.query_one("#blob-path", Input).focus()
            return
        if not isinstance(key, str):
            self._result("Choose the signing key.", ok=False)
            return
        signature = self._path("blob-signature") or default_output(path, SIGNATURE_SUFFIX)
        bundle = self._path("blob-bundle") or default_output(path, BUNDLE_SUFFIX)
        self.query_one("#sign", Button).disabled = True
        bar = self.query_one("#sign-progress", ProgressBar)
        bar.update(total=None, progress=0)
        bar.display = True
        self.sign(path, key, signature, bundle)

    @work(thread=True, exclusive=True, exit_on_error=False, group="sign")
    def sign(self, path: Path, key: str, signature: Path, bundle: Path) -> None:
        total = path.stat().st_size
        done = mark = 0

        def advance(n: int) -> None:
            nonlocal done, mark
            done += n
            if done - mark >= max(total // 50, 1) or done == total:
                mark = done
                self.post_message(self.Progress(done, total))

        with self.context.open(self.prompter) as appliance:
            result = appliance.sign_blob(
                path, key, signature_path=signature, bundle_path=bundle, on_progress=advance
            )
        self.post_message(self.Signed(result, signature, bundle))

    @on(Progress)
    def _progress(self, message: Progress) -> None:
        self.query_one("#sign-progress", ProgressBar).update(
            total=message.total or None, progress=message.done
        )

    @on(Signed)
    def _signed(self, message: Signed) -> None:
        r = message.result
        self._result(
            f"Signed {r.path.name} ({size(r.size)}) with key {r.key_name}\n"
            f"  sha256     {r.sha256}\n"
            f"  signature  {message.signature}\n"
            f"  bundle     {message.bundle}",
            ok=True,
        )

    def worker_failed(self, name: str, error: BaseException) -> bool:
        text = describe_error(error)
        if name != "sign" or text.internal:
            return False
        self._result(f"Not signed: {text.title}\n{text.body}", ok=False)
        return True

    def worker_done(self, name: str) -> None:
        if name == "sign":
            self.query_one("#sign", Button).disabled = False
            self.query_one("#sign-progress").display = False

    def _result(self, text: str, *, ok: bool) -> None:
        box = self.query_one("#sign-result", Static)
        box.border_title = "Signed" if ok else "Not signed"
        box.set_classes("result -ok" if ok else "result -failed")
        box.update(text)
        box.display = True

    @on(Button.Pressed, "#back")
    def action_back(self) -> None:
        self.dismiss(None)
