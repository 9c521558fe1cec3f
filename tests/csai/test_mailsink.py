"""`make run`'s SMTP sink: a real SMTP server process that keeps each mail as an .eml file."""

import signal
import smtplib
import subprocess
import sys
import time
from email.message import EmailMessage
from pathlib import Path

from csai.mailsink import eml_name
from tests.conftest import free_port

REPO = Path(__file__).resolve().parents[2]


def mail(message_id: str, text: str) -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "support@csai.example", "dana@acme.example", "Re: x"
    message["Message-ID"] = message_id
    message.set_content(text)
    return message


def test_the_sink_writes_each_mail_as_an_eml_file_and_never_hides_a_duplicate(tmp_path):
    port, folder = free_port(), tmp_path / "mail"
    sink = subprocess.Popen(  # noqa: S603 - as the launcher starts it
        [sys.executable, "-m", "csai.mailsink", f"--port={port}", f"--folder={folder}"], cwd=REPO
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                client = smtplib.SMTP("127.0.0.1", port, timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline and sink.poll() is None, "the sink did not start"
                time.sleep(0.2)
        with client:
            client.send_message(mail("<reply-1.ticket7@csai.example>", "First reply."))
            client.send_message(mail("<reply-1.ticket7@csai.example>", "The same mail again."))
            client.send_message(mail("<reply-2/../x@csai.example>", "A strange id."))

        first = folder / "reply-1.ticket7@csai.example.eml"
        assert first.name == eml_name("<reply-1.ticket7@csai.example>")
        assert "First reply." in first.read_text()
        assert "The same mail again." in (folder / "reply-1.ticket7@csai.example.2.eml").read_text()
        assert (folder / eml_name("<reply-2/../x@csai.example>")).parent == folder  # no way out of it
        assert sorted(p.name for p in folder.iterdir() if p.name.startswith(".")) == []  # no partial files

        sink.send_signal(signal.SIGTERM)
        assert sink.wait(timeout=30) == 0
    finally:
        if sink.poll() is None:
            sink.kill()
