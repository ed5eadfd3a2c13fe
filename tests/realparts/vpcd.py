"""The software PIV card behind the real PC/SC stack: pcscd + vsmartcard's vpcd + a bridge process.

::

    yubikit / libykcs11 / OpenSC  --PC/SC-->  pcscd  --IFD handler-->  vpcd (libifdvpcd.so)
        --TCP, 2-byte length-prefixed frames-->  bridge process (this module's ``main``)
        --> SoftPivCard

:class:`PcscYubiKey` starts, in order: a ``pcscd`` in the foreground with its own reader.conf
directory (vpcd readers named "Yubico YubiKey OTP+FIDO+CCID", so ykman and libykcs11 take them for
YubiKeys) and one bridge process per card, which connects to vpcd's listening port. It stops them
by their process ids; nothing else is touched. Debian's pcscd always uses /run/pcscd/pcscd.comm, so
there can be one per machine: if another pcscd serves it, :func:`pcsc_unavailable_reason` says so
and the tests fail with that reason (install it: scripts/setup --test).

Latency: the bridge sets TCP_NODELAY and, after every read, TCP_QUICKACK. Debian's vpcd (3.3)
writes each frame's length and body with separate send() calls without TCP_NODELAY, so without an
immediate ACK every APDU stalls ~43 ms (Nagle against delayed ACK); with it an APDU round trip
through pcscd takes ~0.2 ms here.

vpcd's protocol (vsmartcard, ``vpcd.c``): every message is a 2-byte big-endian length and a body.
A 1-byte body is a control: 0x00 power off, 0x01 power on, 0x02 reset, 0x04 "send the ATR";
anything else is a command APDU, answered with the response APDU.

The card's state lives in the bridge process. The test controls touch through a file: while
``<state>/deny-touch-<serial>`` exists, that card answers a touch request as if nobody touched it
(6985).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.x509 import load_pem_x509_certificate

READER_NAME = "Yubico YubiKey OTP+FIDO+CCID"
VPCD_DRIVER = Path("/usr/lib/pcsc/drivers/serial/libifdvpcd.so")
PCSCD = shutil.which("pcscd") or "/usr/sbin/pcscd"
PCSCD_SOCKET = Path("/run/pcscd/pcscd.comm")
LIBYKCS11 = Path("/usr/lib/x86_64-linux-gnu/libykcs11.so")
OPENSC_PKCS11 = Path("/usr/lib/x86_64-linux-gnu/opensc-pkcs11.so")

CTRL_OFF, CTRL_ON, CTRL_RESET, CTRL_ATR = 0, 1, 2, 4


def pcsc_unavailable_reason() -> str | None:
    """Why the PC/SC tests cannot run here, or None."""
    if os.geteuid() != 0:
        return "needs root (pcscd's socket is /run/pcscd/pcscd.comm)"
    if not VPCD_DRIVER.exists():
        return f"{VPCD_DRIVER} missing: apt-get install vsmartcard-vpcd"
    if not Path(PCSCD).exists():
        return "pcscd missing: apt-get install pcscd"
    if PCSCD_SOCKET.exists():
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(PCSCD_SOCKET))
        except OSError:
            pass  # a stale socket: our pcscd will replace it
        else:
            return f"another pcscd already serves {PCSCD_SOCKET}; this test needs its own"
        finally:
            probe.close()
    return None


def free_port_pair() -> int:
    """A port P with P and P + 1 free (vpcd's two readers listen on both, on all interfaces)."""
    for _ in range(50):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as first:
            first.bind(("0.0.0.0", 0))  # noqa: S104  (vpcd binds INADDR_ANY: test the same)
            port: int = first.getsockname()[1]
            if port >= 0xFFFF:
                continue
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as second:
                try:
                    second.bind(("0.0.0.0", port + 1))  # noqa: S104
                except OSError:
                    continue
                return port
    raise RuntimeError("no two consecutive free TCP ports")


# --- the bridge process ----------------------------------------------------------------------


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("vpcd closed the connection")
        # Debian's vpcd writes a frame's length and body with two send()s and does not set
        # TCP_NODELAY: Nagle holds the body until the length is acknowledged, and Linux delays
        # that ACK by ~40 ms. Acknowledge at once (TCP_QUICKACK is cleared by the kernel after
        # use, so it is set after every read).
        with contextlib.suppress(OSError, AttributeError):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        data += chunk
    return data


def serve(sock: socket.socket, card: object, atr: bytes) -> None:
    """Answer vpcd until it hangs up."""
    from tests.realparts.soft_piv import SoftPivCard

    assert isinstance(card, SoftPivCard)
    while True:
        (length,) = struct.unpack(">H", _recv_exact(sock, 2))
        body = _recv_exact(sock, length) if length else b""
        if length == 1:
            if body[0] == CTRL_ATR:
                reply = atr
            else:  # power off / on / reset: security state is lost, no answer expected
                card.power_off()
                continue
        else:
            reply = card.transmit(body)
        sock.sendall(struct.pack(">H", len(reply)) + reply)


def main(argv: list[str] | None = None) -> int:
    """The bridge: build a card from the test CA in --state, connect to vpcd, serve until killed."""
    from tests.realparts.soft_piv import YUBIKEY5_ATR, SoftPivCard, TestAttestationCA

    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--state", type=Path, required=True)
    parser.add_argument("--serial", type=int, default=20_500_002)
    parser.add_argument("--touch-flag", type=Path, help="while this file exists, deny touches")
    args = parser.parse_args(argv)

    state: Path = args.state
    ca = TestAttestationCA(
        root_key=serialization.load_pem_private_key((state / "root.key").read_bytes(), None),  # type: ignore[arg-type]
        root_cert=load_pem_x509_certificate((state / "root.pem").read_bytes()),
        f9_key=serialization.load_pem_private_key((state / "f9.key").read_bytes(), None),  # type: ignore[arg-type]
        f9_cert=load_pem_x509_certificate((state / "f9.pem").read_bytes()),
    )
    deny: Path = args.touch_flag or state / f"deny-touch-{args.serial}"
    card = SoftPivCard(ca, serial=args.serial, touch=lambda: not deny.exists())
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:  # vpcd may drop us (pcscd restart): reconnect until terminated
        try:
            sock = socket.create_connection(("127.0.0.1", args.port), timeout=None)
        except OSError:
            time.sleep(0.1)
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        try:
            serve(sock, card, YUBIKEY5_ATR)
        except (ConnectionError, OSError):
            pass
        finally:
            sock.close()
        time.sleep(0.1)


def write_ca(state: Path, ca: object) -> None:
    from tests.realparts.soft_piv import TestAttestationCA

    assert isinstance(ca, TestAttestationCA)

    def key_pem(key: object) -> bytes:
        return key.private_bytes(  # type: ignore[attr-defined,no-any-return]
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )

    (state / "root.key").write_bytes(key_pem(ca.root_key))
    (state / "root.pem").write_bytes(ca.root_cert.public_bytes(serialization.Encoding.PEM))
    (state / "f9.key").write_bytes(key_pem(ca.f9_key))
    (state / "f9.pem").write_bytes(ca.f9_cert.public_bytes(serialization.Encoding.PEM))


# --- the stack -------------------------------------------------------------------------------


@dataclass
class PcscYubiKey:
    """pcscd + vpcd + one bridge per card, started and stopped by pid. A context manager.

    vpcd gives pcscd two readers ("... 00 00" on ``port``, "... 00 01" on ``port + 1``): the first
    card (``serial``) sits in the first; ``second_serial`` puts another YubiKey in the second.
    """

    state: Path
    serial: int = 20_500_002
    second_serial: int | None = None
    pcscd: subprocess.Popen[bytes] | None = None
    bridges: list[subprocess.Popen[bytes]] = field(default_factory=list)
    port: int = 0

    @property
    def serials(self) -> list[int]:
        return [self.serial] + ([self.second_serial] if self.second_serial is not None else [])

    def deny_touch(self, deny: bool = True, *, serial: int | None = None) -> None:
        flag = self.state / f"deny-touch-{serial or self.serial}"
        if deny:
            flag.touch()
        else:
            flag.unlink(missing_ok=True)

    def __enter__(self) -> PcscYubiKey:
        from tests.realparts.soft_piv import TestAttestationCA

        # pcscd is one per machine: a test that just stopped its own (or another test run on
        # this machine) may still hold the socket for a moment, so wait a little before failing.
        deadline = time.monotonic() + 60
        while (reason := pcsc_unavailable_reason()) and "already serves" in reason \
                and time.monotonic() < deadline:
            time.sleep(0.5)
        if reason:
            raise RuntimeError(reason)
        self.state.mkdir(parents=True, exist_ok=True)
        if not (self.state / "root.pem").exists():
            write_ca(self.state, TestAttestationCA.generate())
        self.port = free_port_pair()
        conf = self.state / "reader.conf.d"
        conf.mkdir(exist_ok=True)
        (conf / "vpcd").write_text(
            f'FRIENDLYNAME "{READER_NAME}"\n'
            f"DEVICENAME   /dev/null:0x{self.port:04X}\n"
            f"LIBPATH      {VPCD_DRIVER}\n"
            f"CHANNELID    0x{self.port:04X}\n"
        )
        log = (self.state / "pcscd.log").open("wb")
        try:
            self.pcscd = subprocess.Popen(
                [PCSCD, "--foreground", "--config", str(conf), "--info"],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            self._wait_for_port()
            root = Path(__file__).resolve().parents[2]
            for index, serial in enumerate(self.serials):
                bridge_log = (self.state / f"bridge-{serial}.log").open("wb")
                self.bridges.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "tests.realparts.vpcd",
                            "--port",
                            str(self.port + index),
                            "--state",
                            str(self.state),
                            "--serial",
                            str(serial),
                        ],
                        cwd=root,
                        env={**os.environ, "PYTHONPATH": str(root)},
                        stdout=bridge_log,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                    )
                )
            self._wait_for_cards()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_for_port(self, timeout: float = 10.0) -> None:
        """Wait until pcscd serves its socket (vpcd then listens; the bridge retries anyway)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.pcscd is not None
            if self.pcscd.poll() is not None:
                raise RuntimeError(f"pcscd exited: {(self.state / 'pcscd.log').read_text()}")
            if PCSCD_SOCKET.exists():
                return
            time.sleep(0.05)
        raise RuntimeError("pcscd did not create its socket")

    def _wait_for_cards(self, timeout: float = 15.0) -> None:
        from smartcard.System import readers

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for bridge in self.bridges:
                if bridge.poll() is not None:
                    raise RuntimeError(f"a bridge exited: see the logs in {self.state}")
            present = 0
            with contextlib.suppress(Exception):
                for reader in readers():
                    if READER_NAME not in str(reader):
                        continue
                    connection = reader.createConnection()
                    try:
                        connection.connect()
                        connection.disconnect()
                        present += 1
                    except Exception:  # noqa: S110  (no card yet: keep waiting)
                        pass
                    finally:
                        with contextlib.suppress(Exception):
                            connection.release()
            if present == len(self.serials):
                return
            time.sleep(0.1)
        raise RuntimeError(
            "the virtual cards did not appear; pcscd log:\n"
            + (self.state / "pcscd.log").read_text(errors="replace")[-4000:]
        )

    def stop(self) -> None:
        for process in [*self.bridges, self.pcscd]:
            if process is None or process.poll() is not None:
                continue
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        self.bridges, self.pcscd = [], None

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


if __name__ == "__main__":
    sys.exit(main())
