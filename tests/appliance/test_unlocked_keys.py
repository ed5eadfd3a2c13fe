"""Keys unlocked for a session (the terminal UI): one password per key, held in memory until
locked or idle; a wrong password is asked again there, never when it came from the environment;
without a session (the CLI) every signing asks once."""

from __future__ import annotations

from pathlib import Path

import pytest

from airseal.appliance.service import Appliance, ApplianceOptions, UnlockedKeys
from airseal.trustroot.errors import WrongPassword

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
COSIGN_KEY = FIXTURES / "cosign" / "cosign_pemsigstorekey.key"
PASSWORD = "hello"  # the cosign project's test key password (fixtures README)


class ScriptedPrompter:
    """Answers secrets from a list, and remembers what it was asked."""

    def __init__(self, *answers: str) -> None:
        self.answers = list(answers)
        self.asked: list[str] = []

    def secret(self, prompt: str, *, confirm: bool = False) -> str:
        self.asked.append(prompt)
        return self.answers.pop(0)

    def notice(self, message: str) -> None:
        pass


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.delenv("COSIGN_PASSWORD", raising=False)
    root = tmp_path / "home"
    with Appliance(root) as appliance:
        appliance.init()
    with Appliance(root, ScriptedPrompter(PASSWORD)) as appliance:
        appliance.import_file_key("site-ops", COSIGN_KEY)  # keeps the source's password
    (tmp_path / "file.txt").write_bytes(b"signed content\n")
    return root


def sign(root: Path, prompter: ScriptedPrompter, keys: UnlockedKeys | None) -> None:
    with Appliance(root, prompter, ApplianceOptions(unlocked_keys=keys)) as appliance:
        appliance.sign_blob(root.parent / "file.txt", "site-ops")


def test_one_password_per_session_until_locked(home: Path) -> None:
    keys = UnlockedKeys()
    prompter = ScriptedPrompter(PASSWORD, PASSWORD)
    sign(home, prompter, keys)
    sign(home, prompter, keys)  # a second appliance (another worker) of the same session
    assert prompter.asked == ["Password for key site-ops"]
    assert keys.names() == ["site-ops"]
    assert keys.lock() == ["site-ops"] and keys.names() == []
    sign(home, prompter, keys)
    assert len(prompter.asked) == 2


def test_an_idle_key_locks_itself(home: Path) -> None:
    clock = Clock()
    keys = UnlockedKeys(idle_seconds=300, clock=clock)
    prompter = ScriptedPrompter(PASSWORD, PASSWORD)
    sign(home, prompter, keys)
    clock.now += 299
    sign(home, prompter, keys)  # used again: the idle time starts over
    clock.now += 299
    assert keys.names() == ["site-ops"] and len(prompter.asked) == 1
    clock.now += 1
    assert keys.expire() == ["site-ops"] and keys.names() == []
    sign(home, prompter, keys)
    assert len(prompter.asked) == 2


def test_a_wrong_password_is_asked_again_in_a_session(home: Path) -> None:
    keys = UnlockedKeys(attempts=3)
    prompter = ScriptedPrompter("wrong", "wrong again", PASSWORD)
    sign(home, prompter, keys)
    assert len(prompter.asked) == 3
    assert "did not unlock" in prompter.asked[1] and "attempt 3 of 3" in prompter.asked[2]
    assert keys.names() == ["site-ops"]


def test_the_last_wrong_password_fails_and_unlocks_nothing(home: Path) -> None:
    keys = UnlockedKeys(attempts=2)
    with pytest.raises(WrongPassword):
        sign(home, ScriptedPrompter("wrong", "wrong"), keys)
    assert keys.names() == []


def test_without_a_session_a_wrong_password_fails_at_once(home: Path) -> None:
    prompter = ScriptedPrompter("wrong", PASSWORD)
    with pytest.raises(WrongPassword):
        sign(home, prompter, None)
    assert len(prompter.asked) == 1


def test_a_password_from_the_environment_is_not_retried(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COSIGN_PASSWORD", "wrong")
    prompter = ScriptedPrompter()
    with pytest.raises(WrongPassword):
        sign(home, prompter, UnlockedKeys(attempts=3))
    assert prompter.asked == []


def test_a_replaced_key_is_not_taken_for_the_unlocked_one() -> None:
    keys = UnlockedKeys()
    keys.put("site-ops", "fingerprint-a", object())
    assert keys.get("site-ops", "fingerprint-b") is None
    assert keys.get("site-ops", "fingerprint-a") is not None
