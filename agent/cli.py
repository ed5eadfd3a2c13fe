"""The `airseal-agent` command line: thin over the agent's services.

Cold start matters (the agent runs on every USB insertion): this module imports only click and
the error types; each command imports what it uses. Errors are caught once, in :func:`main`
(:func:`airseal._internal.cli.run_main`, shared with `airseal`): their user-facing text goes to
stderr without a traceback and their class picks the exit code (:mod:`airseal.agent.exit_codes`).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from airseal._internal.cli import (
    emit_json,
    examples,
    json_option,
    run_main,
    table_lines,
    verbose_option,
)
from airseal._internal.version import VERSION
from airseal.agent import exit_codes, report_text

if TYPE_CHECKING:
    from airseal.agent.approval import ApprovalRequest
    from airseal.agent.identity import PasswordPrompt
    from airseal.agent.journal import Journal
    from airseal.agent.report import ImportReport
    from airseal.agent.state import AgentState

@examples(
    'airseal-agent init',
    'airseal-agent enroll --key distributor.pub --name "Site distributor"',
    'airseal-agent import /media/usb',
)
@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(VERSION, prog_name="airseal-agent")
@verbose_option
def cli() -> None:
    """Airseal endpoint agent: import signed media, verify it three times, run its actions.

    State lives in $AIRSEAL_AGENT_HOME, else /var/lib/airseal-agent (Linux),
    /Library/Application Support/Airseal Agent (macOS) or %ProgramData%\\Airseal\\Agent
    (Windows). The agent key password comes from the systemd credential airseal-agent-key,
    else AIRSEAL_AGENT_KEY_PASSWORD, else a hidden prompt.

    Exit codes: 0 ok, 1 import refused (a check failed), 2 usage, 3 operational problem,
    4 imported but some actions failed.
    """


group_option = click.option(
    "--group",
    "groups",
    multiple=True,
    help="A group this endpoint belongs to (repeatable; replaces the groups).",
)
"""One definition for init and config (the same flag has the same help everywhere)."""


# -- shared plumbing ----------------------------------------------------------------------------


def _emit_json(data: Any) -> None:
    emit_json(data)


def _terminal_prompt() -> PasswordPrompt | None:
    if not sys.stdin.isatty():
        return None

    def ask(prompt: str, confirm: bool) -> str:
        value: str = click.prompt(
            prompt, hide_input=True, confirmation_prompt=confirm, err=True, show_default=False
        )
        return value

    return ask


def _password_supplier(purpose: str, *, confirm: bool = False) -> Callable[[], bytes]:
    def supply() -> bytes:
        from airseal.agent.identity import key_password

        return key_password(os.environ, _terminal_prompt(), purpose=purpose, confirm=confirm)

    return supply


def _time(stored: str) -> str:
    """A stored timestamp in the one format of both CLIs (``2026-12-02T08:30:00Z``)."""
    from airseal._internal.times import normalise_timestamp

    return normalise_timestamp(stored)


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)


def _open_state() -> AgentState:
    from airseal.agent.state import open_state, state_dir

    return open_state(state_dir())


def _ensure_state() -> tuple[AgentState, bool]:
    from airseal.agent.state import init_state, state_dir

    return init_state(
        state_dir(), _password_supplier("Password for the new agent key", confirm=True)
    )


def _journal(state: AgentState) -> Journal:
    from airseal.agent.journal import Journal

    return Journal.open(state.journal_path)


# -- init, config -------------------------------------------------------------------------------


@examples(
    'airseal-agent init',
    'airseal-agent init --group finance --group floor-2 --json',
)
@cli.command()
@group_option
@json_option
def init(groups: tuple[str, ...], as_json: bool) -> None:
    """Create the state directory, the agent id and the agent's encrypted receipt key."""
    from airseal.agent.state import init_state, state_dir, update_config

    state, created = init_state(
        state_dir(),
        _password_supplier("Password for the new agent key", confirm=True),
        groups=groups,
    )
    if groups and not created:
        state = update_config(state, groups=groups)
    _print_identity(state, created, as_json)


def _print_identity(state: AgentState, created: bool, as_json: bool) -> None:
    from airseal.agent.identity import load_public_key
    from airseal.trustroot.keys import fingerprint

    key_fp = fingerprint(load_public_key(state.root))
    if as_json:
        _emit_json(
            {
                "state": str(state.root),
                "created": created,
                "agentId": state.agent_id,
                "keyFingerprint": key_fp,
                "groups": list(state.config.groups),
            }
        )
        return
    verb = "Created" if created else "Already initialised:"
    click.echo(f"{verb} {state.root}")
    click.echo(f"  agent id         {state.agent_id}")
    click.echo(f"  key fingerprint  {key_fp}")


@examples(
    'airseal-agent identity',
    'airseal-agent identity --json',
)
@cli.command()
@json_option
def identity(as_json: bool) -> None:
    """What the appliance needs to enrol this agent: its id, public key and fingerprint.

    Bring agent.pub to the appliance (`airseal agents enroll --id ID --key agent.pub`), or
    compare the fingerprint when the operator approves it from a receipt.
    """
    from airseal.agent.identity import PUBLIC_KEY_NAME, load_public_key
    from airseal.trustroot.keys import fingerprint, spki_pem

    state = _open_state()
    key = load_public_key(state.root)
    pem = spki_pem(key).decode()
    if as_json:
        _emit_json(
            {
                "agentId": state.agent_id,
                "keyFingerprint": fingerprint(key),
                "publicKeyPem": pem,
                "publicKeyFile": str(state.root / PUBLIC_KEY_NAME),
            }
        )
        return
    click.echo(f"agent id         {state.agent_id}")
    click.echo(f"key fingerprint  {fingerprint(key)}")
    click.echo(f"public key file  {state.root / PUBLIC_KEY_NAME}")
    click.echo(pem, nl=False)


@examples(
    'airseal-agent config',
    'airseal-agent config --group finance --allow-destination-root /opt',
    'airseal-agent config --reboot-command "systemctl reboot" --execute-retries 2',
)
@cli.command()
@group_option
@click.option("--clear-groups", is_flag=True, help="Remove every group.")
@click.option(
    "--reboot-command", help='The command that reboots this endpoint (e.g. "systemctl reboot").'
)
@click.option("--default-reboot-command", is_flag=True, help="Use the OS's reboot command.")
@click.option(
    "--allow-destination-root",
    "roots",
    multiple=True,
    help="destination.allowed-roots: downloads must stay below these folders (repeatable; "
    "replaces the list). None set: any absolute path.",
)
@click.option("--clear-destination-roots", is_flag=True, help="Allow any absolute destination.")
@click.option(
    "--destination-links",
    type=click.Choice(["refuse", "root-owned", "follow"]),
    help="destination.links: links on the way to a destination (default refuse).",
)
@click.option(
    "--execute-retries",
    type=click.IntRange(0, 100),
    help="execute.retries: how often a failed execute action runs again on re-imports "
    "(default 0: never).",
)
@json_option
def config(
    groups: tuple[str, ...],
    clear_groups: bool,
    reboot_command: str | None,
    default_reboot_command: bool,
    roots: tuple[str, ...],
    clear_destination_roots: bool,
    destination_links: str | None,
    execute_retries: int | None,
    as_json: bool,
) -> None:
    """Show or change the endpoint's groups, reboot command, destination and retry policy."""
    import shlex

    from airseal.agent.lock import StateLock
    from airseal.agent.platforms import current_os
    from airseal.agent.state import update_config

    if roots and clear_destination_roots:
        raise click.UsageError(
            "--allow-destination-root and --clear-destination-roots exclude each other"
        )
    state = _open_state()
    changes = (
        groups,
        clear_groups,
        reboot_command,
        default_reboot_command,
        roots,
        clear_destination_roots,
        destination_links,
        execute_retries is not None,
    )
    if any(changes):
        with StateLock(state.lock_path):
            state = update_config(
                state,
                groups=() if clear_groups else (groups or None),
                reboot_command=_shell_words(reboot_command) if reboot_command else None,
                clear_reboot_command=default_reboot_command,
                destination_roots=() if clear_destination_roots else (roots or None),
                destination_links=destination_links,
                execute_retries=execute_retries,
            )
    command = list(state.reboot_command(current_os()))
    policy = state.config.destination
    if as_json:
        _emit_json(
            {
                "agentId": state.agent_id,
                "groups": list(state.config.groups),
                "rebootCommand": command,
                "destination": {
                    "allowedRoots": list(policy.allowed_roots),
                    "links": policy.links,
                },
                "execute": {"retries": state.config.execute_retries},
            }
        )
        return
    click.echo(f"groups                      {', '.join(state.config.groups) or '(none)'}")
    click.echo(f"reboot command              {shlex.join(command)}")
    click.echo(f"destination.allowed-roots   {policy.describe_roots()}")
    click.echo(f"destination.links           {policy.links}")
    retries = report_text.retries_text(state.config.execute_retries)
    click.echo(f"execute.retries             {retries}")


def _shell_words(text: str) -> tuple[str, ...]:
    """``--reboot-command`` split as a POSIX shell would; an unclosed quote is a usage error."""
    import shlex

    try:
        return tuple(shlex.split(text))
    except ValueError as error:
        raise click.BadParameter(
            f"{str(error).lower()} in {text!r}", param_hint="'--reboot-command'"
        ) from None


# -- enroll -------------------------------------------------------------------------------------


@examples(
    'airseal-agent enroll --key distributor.pub --name "Site distributor"',
    'airseal-agent enroll --key distributor.pub --approved --json',
    'airseal-agent enroll --key distributor.pub --log-key log.pub --log-origin log.site.example',
)
@cli.command()
@click.option(
    "--key",
    "key_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The distributor's public key (PEM, as `airseal key export-public` writes it).",
)
@click.option(
    "--site-root",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The site's TUF root (`airseal site root -o root.json`): trust what the site says.",
)
@click.option(
    "--log-key",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The site log's public key (PEM): every media must then prove itself in that log.",
)
@click.option(
    "--log-origin",
    help="The site log's origin, a bare host name (`airseal log status` shows it).",
)
@click.option("--name", help='A name people recognise, e.g. "Site distributor".')
@click.option(
    "--role",
    type=click.Choice(["both", "exports", "actions"]),
    default="both",
    show_default=True,
    help="What the key may sign.",
)
@click.option(
    "--approved",
    is_flag=True,
    help="Record your approval now (endpoints nobody sits at never ask).",
)
@json_option
def enroll(
    key_path: Path | None,
    site_root: Path | None,
    log_key: Path | None,
    log_origin: str | None,
    name: str | None,
    role: str,
    approved: bool,
    as_json: bool,
) -> None:
    """Pin a distributor's public key, or the site's TUF root (then the site policy carried on
    each media says which distributors to trust). With --log-key and --log-origin, pin the
    site's transparency log too (pinned mode): media must then carry the log's proofs."""
    if (log_key is None) != (log_origin is None):
        raise click.UsageError("--log-key and --log-origin go together")
    if log_key is not None and site_root is not None:
        raise click.UsageError("--log-key is for pinned keys: with --site-root the site's "
                               "trusted root (a TUF target) names the log")
    if (key_path is None) == (site_root is None):
        raise click.UsageError("give exactly one of --key and --site-root")
    if log_key is not None and log_origin is not None:
        _enroll_log(log_key, log_origin, quiet=as_json)
    if site_root is not None:
        from airseal.agent.cli_site import enroll_site

        enroll_site(_ensure_state()[0], site_root, now=_now(), as_json=as_json)
        return
    assert key_path is not None
    from airseal._internal.atomic import read_capped
    from airseal.agent.enrolment import enroll as pin
    from airseal.agent.enrolment import trust_again
    from airseal.agent.lock import StateLock
    from airseal.agent.trust import parse_purposes
    from airseal.errors import FileTooLarge
    from airseal.trustroot.keys import MAX_KEY_PEM_BYTES

    try:
        pem = read_capped(key_path, MAX_KEY_PEM_BYTES)
    except FileTooLarge as exc:
        raise click.BadParameter(str(exc), param_hint="--key") from None
    state, _ = _ensure_state()
    with StateLock(state.lock_path), _journal(state) as journal:
        record, created = pin(
            journal,
            pem,
            name=name,
            purposes=parse_purposes(role),
            now=_now(),
            approved=approved,
            subject=str(key_path),
        )
        record = journal.distributor(record.fingerprint) or record
        trust_again(state.root, record.fingerprint)  # enrolling again undoes a distrust
    if as_json:
        _emit_json({**record.to_json_dict(), "created": created, "agentId": state.agent_id})
        return
    verb = "Enrolled" if created else "Updated"
    click.echo(f"{verb} {record.name}")
    click.echo(f"  fingerprint  {record.fingerprint}")
    click.echo(f"  may sign     {', '.join(sorted(record.may_sign))}")
    click.echo(
        "  approval     "
        + (
            f"approved ({record.approved_how})"
            if record.approved
            else "asked the first time its media is imported"
        )
    )


def _enroll_log(path: Path, origin: str, *, quiet: bool) -> None:
    from airseal._internal.atomic import read_capped
    from airseal.agent.lock import StateLock
    from airseal.agent.log_state import enroll_log_key
    from airseal.errors import FileTooLarge
    from airseal.trustroot.keys import MAX_KEY_PEM_BYTES
    from airseal.trustroot.tlog.entries import log_id

    try:
        pem = read_capped(path, MAX_KEY_PEM_BYTES)
    except FileTooLarge as exc:
        raise click.BadParameter(str(exc), param_hint="--log-key") from None
    state, _ = _ensure_state()
    with StateLock(state.lock_path):
        trust = enroll_log_key(state.root, pem, origin, subject=str(path))
    if not quiet:
        click.echo(f"Enrolled the transparency log {origin} (log id "
                   f"{log_id(trust.public_key).hex()[:16]}...): media must prove itself in it")


# -- import -------------------------------------------------------------------------------------


class TerminalApprover:
    """Asks the person at the terminal; refuses when there is nobody to ask."""

    how = "prompt"

    def __call__(self, request: ApprovalRequest) -> bool:
        click.echo(request.describe(), err=True)
        if not sys.stdin.isatty():
            click.echo(
                "No terminal to ask on: refusing. Run again with --yes to approve.", err=True
            )
            return False
        return click.confirm("Approve this distributor?", default=False, err=True)


@examples(
    'airseal-agent import /media/usb',
    'airseal-agent import /media/usb --dry-run',
    'airseal-agent import /media/usb --non-interactive --json',
)
@cli.command(name="import")
@click.argument("mount", type=click.Path(file_okay=False, path_type=Path))
@click.option("--yes", "-y", is_flag=True, help="Approve a new distributor without asking.")
@click.option(
    "--non-interactive",
    is_flag=True,
    help="Never ask: refuse media from a distributor not approved before.",
)
@click.option("--dry-run", is_flag=True, help="Verify and show the plan; run and write nothing.")
@click.option(
    "--retry-interrupted", is_flag=True, help="Run again actions a crash interrupted earlier."
)
@click.option("--no-reboot", is_flag=True, help="Record a needed reboot as pending instead.")
@json_option
@click.pass_context
def import_media(
    ctx: click.Context,
    mount: Path,
    yes: bool,
    non_interactive: bool,
    dry_run: bool,
    retry_interrupted: bool,
    no_reboot: bool,
    as_json: bool,
) -> None:
    """Import the media mounted at MOUNT (the folder that holds airseal/)."""
    import gc

    from airseal.agent.approval import ApproveAll, Approver, RefuseUnapproved
    from airseal.agent.cli_site import trust_for_import
    from airseal.agent.identity import load_signer, password_is_unattended
    from airseal.agent.importer import Importer, ImportOptions, host_facts
    from airseal.agent.lock import StateLock
    from airseal.agent.state import is_site_enrolled
    from airseal.media.reader import DirectorySource

    if yes and non_interactive:
        raise click.UsageError("--yes and --non-interactive exclude each other")
    approver: Approver = (
        ApproveAll() if yes else RefuseUnapproved() if non_interactive else TerminalApprover()
    )
    state = _open_state()
    password = _password_supplier("Password of the agent key")
    source = DirectorySource(mount)
    with StateLock(state.lock_path), _journal(state) as journal:
        importer = Importer(
            state,
            journal,
            trust_for_import(state, journal, source, _now),
            source,
            approver=approver,
            clock=_now,
            host=host_facts(state),
            signer=lambda: load_signer(state.root, password()),
            options=ImportOptions(
                dry_run=dry_run,
                retry_interrupted=retry_interrupted,
                allow_reboot=not no_reboot,
                # pinned keys only: site mode updates its trust root during check 2, after
                # the key was unlocked, and keeps that order
                unlock_in_background=password_is_unattended(os.environ)
                and not is_site_enrolled(state.root),
            ),
            media_label=str(mount),
        )
        # The modules imported by now (pydantic's schemas, the models, click) live as long as
        # the process; without this each full collection during the import walked all of
        # them again (one took 0.1 s of a 1,000-action import). Nothing is disabled: objects
        # made from here on are collected as before.
        gc.freeze()
        report = importer.run()
    if as_json:
        _emit_json(report.to_json_dict())
    else:
        report_text.print_report(report)
    if report.error is not None:
        click.echo(report.error.diagnostics(), err=True)
    for warning in report.warnings:
        click.echo(f"warning: {warning}", err=True)
    global _SKIP_TEARDOWN
    _SKIP_TEARDOWN = True  # the journal, the lock and every placed file are closed and durable
    ctx.exit(_import_exit_code(report))


def _import_exit_code(report: ImportReport) -> int:
    if report.status == "refused":
        return exit_codes.REFUSED
    if report.failed_actions:
        return exit_codes.ACTIONS_FAILED
    return exit_codes.OK


# -- status, history ----------------------------------------------------------------------------


@examples(
    'airseal-agent status',
    'airseal-agent status --json',
)
@cli.command()
@json_option
def status(as_json: bool) -> None:
    """The agent's identity, enrolled distributors, last import and anything left unfinished."""
    from airseal.agent.identity import load_public_key
    from airseal.agent.leftovers import pending_leftovers, remove_leftovers
    from airseal.agent.lock import StateLock
    from airseal.agent.log_state import status_json as log_status
    from airseal.agent.platforms import current_os
    from airseal.agent.site_trust import status_json as site_status
    from airseal.trustroot.keys import fingerprint

    state = _open_state()
    lock = StateLock(state.lock_path)
    busy = not lock.try_acquire()
    cleaned: list[str] = []
    try:
        with _journal(state) as journal:
            if busy:
                running = journal.unfinished_runs()
                interrupted = journal.interrupted_runs(limit=20)
                placing = pending_leftovers(state)
            else:
                running, placing = [], []
                interrupted = journal.recover_interrupted(now=_now()) + journal.interrupted_runs(
                    limit=20
                )
                cleaned = remove_leftovers(state, current_os(), state.config.destination)
            distributors = journal.distributors()
            last = journal.imports(limit=1)
            reboot = journal.pending_reboot()
    finally:
        lock.release()
    interrupted = list({r.id: r for r in interrupted}.values())
    data = {
        "agentId": state.agent_id,
        "state": str(state.root),
        "keyFingerprint": fingerprint(load_public_key(state.root)),
        "groups": list(state.config.groups),
        "busy": busy,
        "running": [r.to_json_dict(with_output=False) for r in running],
        "interrupted": [r.to_json_dict(with_output=False) for r in interrupted],
        "distributors": [d.to_json_dict() for d in distributors],
        "site": site_status(state.root),
        "log": log_status(state.root),
        "lastImport": last[0].to_json_dict() if last else None,
        "pendingReboot": reboot.to_json_dict() if reboot else None,
        "placing": placing,
        "cleanedUp": cleaned,
        "destination": {
            "allowedRoots": list(state.config.destination.allowed_roots),
            "links": state.config.destination.links,
        },
        "execute": {"retries": state.config.execute_retries},
    }
    if as_json:
        _emit_json(data)
        return
    click.echo(f"Agent {state.agent_id}  ({state.root})")
    click.echo(f"  key fingerprint  {data['keyFingerprint']}")
    click.echo(f"  groups           {', '.join(state.config.groups) or '(none)'}")
    click.echo(
        f"  destinations     {state.config.destination.describe_roots()}, links "
        f"{state.config.destination.links}"
    )
    click.echo(f"  execute retries  {report_text.retries_text(state.config.execute_retries)}")
    for leftover in cleaned:
        click.echo(f"Removed what an earlier, killed import left: {leftover}")
    if not distributors:
        click.echo("No distributor enrolled: airseal-agent enroll --key distributor.pub")
    for d in distributors:
        approval = "approved" if d.approved else "not yet approved"
        click.echo(
            f"Distributor {d.name}  {d.fingerprint[:16]}…  {approval}, last sequence "
            f"{d.last_sequence}"
        )
    log_shown = log_status(state.root)
    if log_shown is not None:
        seen = log_shown["checkpoint"]
        click.echo(
            "Transparency log: " + (
                f"last checkpoint {seen['origin']} size {seen['size']} (proved by an import)"
                if seen else "no checkpoint proved yet"
            ) + (f", pinned origin {log_shown['pinnedOrigin']}"
                 if log_shown["pinnedOrigin"] else "")
        )
    if last:
        item = last[0]
        click.echo(
            f"Last import: {_time(item.started)} {item.export_id or '-'} {item.status} "
            f"({item.media})"
        )
    for run in running:
        name = report_text.shown(run.name)
        click.echo(f"RUNNING: {name} v{run.version} (started {_time(run.started)})")
    for run in interrupted:
        click.echo(
            f"INTERRUPTED: {report_text.shown(run.name)} v{run.version} of export {run.export_id} "
            f"(started {_time(run.started)}): result unknown"
        )
    if reboot is not None:
        click.echo(f"Reboot {reboot.reboot} after import of {reboot.export_id}")


@examples(
    'airseal-agent history',
    'airseal-agent history --limit 5 --json',
)
@cli.command()
@click.option("--limit", default=20, show_default=True, help="Newest imports to show.")
@json_option
def history(limit: int, as_json: bool) -> None:
    """Past imports and what happened to each action (with its output)."""
    state = _open_state()
    with _journal(state) as journal:
        imports = journal.imports(limit=limit)
        entries = [(item, journal.runs_for_import(item.id)) for item in imports]
    if as_json:
        _emit_json(
            [
                {**item.to_json_dict(), "actions": [r.to_json_dict() for r in runs]}
                for item, runs in entries
            ]
        )
        return
    if not entries:
        click.echo("No imports yet.")
        return
    header = ("IMPORT", "STARTED", "EXPORT", "SEQ", "STATUS", "MEDIA")
    rows = [
        (
            f"#{item.id}",
            _time(item.started),
            item.export_id or "-",
            str(item.sequence or "-"),
            item.status + (" (dry run)" if item.dry_run else ""),
            item.media,
        )
        for item, _ in entries
    ]
    lines = table_lines(header, rows)
    click.echo(lines[0] + "\n  (then each action: outcome, name, version)")
    for line, (item, runs) in zip(lines[1:], entries, strict=True):
        click.echo(line)
        if item.error:
            click.echo(f"    {item.error.get('message')}")
        for run in runs:
            mark = report_text.MARKS.get(run.outcome, run.outcome)
            line = f"    {mark:<12} {report_text.shown(run.name)} v{run.version}"
            if run.exit_code is not None:
                line += f" (exit {run.exit_code})"
            if run.reason:
                line += f": {report_text.escaped(run.reason)}"
            click.echo(line)


from airseal.agent import cli_site as _cli_site  # noqa: E402,F401  (registers its commands)

# -- entry point --------------------------------------------------------------------------------
from airseal.agent import cli_update  # noqa: E402, F401  (registers selfcheck, self-update)

_SKIP_TEARDOWN = False
"""Set by a finished import: the process may end without the interpreter's teardown."""


def main(argv: list[str] | None = None) -> int:
    global _SKIP_TEARDOWN
    _SKIP_TEARDOWN = False
    code = run_main(
        cli, argv, prog_name="airseal-agent", exit_codes=exit_codes.ERROR_CODES,
        failed_code="refused",
    )
    if argv is None and _SKIP_TEARDOWN:
        _end_process(code)
    return code


def _end_process(code: int) -> None:
    """End the program now that an import is over, without the interpreter's teardown.

    Freeing every object of a 1,000-action import one by one cost 40-100 ms of a ~1 s command
    and decided nothing: what the import wrote is durable and closed before it reports (files
    flushed, the journal committed and closed, the lock released, the receipt written). Only
    for the program itself (``argv`` not given): a caller of :func:`main` keeps its process.
    Output not yet flushed is flushed first; if that fails the normal exit reports it."""
    try:
        logging = sys.modules.get("logging")
        if logging is not None:
            logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):
        return
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
