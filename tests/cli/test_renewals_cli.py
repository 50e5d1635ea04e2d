"""``ecms renewals plan|send``, ``ecms smtp set|test``, ``ecms forms add``, ``ecms intake`` (files and a
watched folder) and ``ecms templates``."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import io
import json

from sqlalchemy import select

from ecms_desktop.cli import main
from ecms_desktop.models.renewal import OutboxMessage, RenewalRequest, SmtpProfile
from tests.factories import DAY0, customer_fills, make_expiring_certificate


def run(db, *argv: str, stdin: str = "", capsys=None, monkeypatch=None) -> tuple[int, str, str]:
    if monkeypatch is not None:
        monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    code = main(["--db", db.url, *argv])
    out, err = capsys.readouterr()
    return code, out, err



def test_smtp_set_and_test_without_keyring(db, company_id, smtp, capsys, monkeypatch):
    code, out, _ = run(db, "smtp", "set", "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none",
                       "--from", "tax@acme.example", capsys=capsys)
    assert code == 0 and "SMTP server saved" in out
    code, out, _ = run(db, "smtp", "test", capsys=capsys)
    assert code == 0 and "the server answered 250" in out
    code, out, _ = run(db, "smtp", "set", "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none",
                       "--from", "tax@acme.example", "--username", "bob", "--password-stdin",
                       stdin="s3cret\n", capsys=capsys, monkeypatch=monkeypatch)
    assert code == 0 and "The password is NOT stored" in out
    with db.reader() as s:
        row = s.execute(select(SmtpProfile)).scalar_one()
        assert row.username == "bob" and "s3cret" not in repr(row.__dict__)
    code, _, err = run(db, "smtp", "set", "--host", "", "--port", "0", "--security", "none", "--from", "nobody",
                       capsys=capsys)
    assert code == 1 and "port 0" in err and "not an e-mail address" in err


def test_plan_send_dry_run_and_failed(db, company_id, smtp, capsys, tmp_path):
    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=20))
    make_expiring_certificate(db, company_id, "C-2", DAY0 + dt.timedelta(days=25), email="bad@buyer.example")
    smtp.refuse_recipient("bad@buyer.example", 550)
    run(db, "smtp", "set", "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none",
        "--from", "tax@acme.example", capsys=capsys)
    run(db, "settings", "set", "smtp_rate_per_minute", "0", capsys=capsys)
    code, out, _ = run(db, "renewals", "plan", "--as-of", DAY0.isoformat(), "--format", "json", capsys=capsys)
    plan = json.loads(out)
    assert code == 0 and plan["counts"]["request"] == 2 and plan["ladder"]["reminder_days"] == [7, 14]
    code, out, _ = run(db, "renewals", "send", "--as-of", DAY0.isoformat(), "--dry-run", str(tmp_path / "eml"),
                       capsys=capsys)
    assert code == 0 and out.count("wrote ") == 2 and smtp.messages == []
    eml = sorted((tmp_path / "eml").glob("*.eml"))
    assert len(eml) == 2
    assert "RQ-" in email.message_from_bytes(eml[0].read_bytes(), policy=email.policy.default)["Subject"]
    code, out, _ = run(db, "renewals", "send", "--as-of", DAY0.isoformat(), "--only", "999", capsys=capsys)
    assert code == 0 and out.startswith("0 requests")
    code, out, _ = run(db, "renewals", "send", "--as-of", DAY0.isoformat(), capsys=capsys)
    assert code == 1 and "1 sent, 1 refused permanently" in out and "REFUSED for Customer C-2" in out
    assert [m.rcpt_tos for m in smtp.messages] == [["c-1@buyer.example"]]
    code, out, _ = run(db, "renewals", "failed", capsys=capsys)
    assert "bad@buyer.example" in out and "550" in out
    code, out, _ = run(db, "renewals", "plan", "--as-of", (DAY0 + dt.timedelta(days=7)).isoformat(), capsys=capsys)
    assert "reminder 1" in out


def test_outbox_send_queued_and_retry(db, company_id, smtp, capsys):
    from ecms_desktop.services.renewals.service import RenewalService

    make_expiring_certificate(db, company_id, "C-1", DAY0 + dt.timedelta(days=20))
    make_expiring_certificate(db, company_id, "C-2", DAY0 + dt.timedelta(days=25), email="bad@buyer.example")
    run(db, "smtp", "set", "--host", "127.0.0.1", "--port", str(smtp.port), "--security", "none",
        "--from", "tax@acme.example", capsys=capsys)
    run(db, "settings", "set", "smtp_rate_per_minute", "0", capsys=capsys)
    RenewalService(db).run(company_id, DAY0, send=False)  # queued by an earlier run, not sent
    code, out, _ = run(db, "renewals", "outbox", "--status", "queued", "--format", "json", capsys=capsys)
    queued = json.loads(out)
    assert code == 0 and sorted(e["to_address"] for e in queued) == ["bad@buyer.example", "c-1@buyer.example"]
    assert {e["status"] for e in queued} == {"queued"}
    smtp.refuse_recipient("bad@buyer.example", 550)
    code, out, _ = run(db, "renewals", "send-queued", capsys=capsys)
    assert code == 1 and "1 sent, 1 refused permanently" in out
    code, out, _ = run(db, "renewals", "outbox", "--status", "failed", capsys=capsys)
    failed_id = next(e["outbox_id"] for e in queued if e["to_address"] == "bad@buyer.example")
    assert "bad@buyer.example" in out and "550" in out and "c-1@" not in out
    smtp.refused.clear()
    code, out, _ = run(db, "renewals", "retry", str(failed_id), capsys=capsys)
    assert code == 0 and f"Outbox message {failed_id}: 1 sent" in out
    code, _, err = run(db, "renewals", "retry", str(failed_id), capsys=capsys)
    assert code == 1 and "is sent, not failed" in err
    code, out, _ = run(db, "renewals", "outbox", capsys=capsys)
    assert out.count("sent") >= 2 and "failed" not in out.split("\n", 2)[2]


def test_forms_add_then_intake_files_and_watched_folder(db, company_id, capsys, tmp_path, shared_dir):
    code, out, _ = run(db, "forms", "add", "NY-ST-120", str(shared_dir / "real-forms" / "NY-ST-120.pdf"),
                       capsys=capsys)
    assert code == 0 and "NY-ST-120" in out and "known to the rules pack" in out
    code, _, err = run(db, "forms", "add", "NY-ST-120", str(shared_dir / "real-forms" / "WI-S-211.pdf"),
                       capsys=capsys)
    assert code == 1 and "no fill-in fields" in err
    cert = make_expiring_certificate(db, company_id, "C-NY", DAY0 + dt.timedelta(days=20), state="NY", form="NY-ST-120")
    run(db, "renewals", "send", "--as-of", DAY0.isoformat(), "--dry-run", str(tmp_path / "eml"), capsys=capsys)
    # dry run changed nothing; now record for real without a server: queue only via the service
    from ecms_desktop.services.renewals.service import RenewalService

    RenewalService(db).run(company_id, DAY0, send=False)
    with db.reader() as s:
        req = s.execute(select(RenewalRequest).where(RenewalRequest.certificate_id == cert)).scalar_one()
        raw = s.execute(select(OutboxMessage.raw).where(OutboxMessage.request_id == req.id)).scalar_one()
        token = req.token
    msg = email.message_from_bytes(raw, policy=email.policy.default)
    form = next(p for p in msg.iter_attachments() if p.get_filename().startswith("NY-ST-120"))
    filled = customer_fills(form.get_content(), {"print signer's name": "Pat Buyer", "date signed": "2026-01-12"})
    watched = tmp_path / "inbox"
    watched.mkdir()
    (watched / "returned.pdf").write_bytes(filled)
    (watched / "junk.pdf").write_bytes(b"not a pdf at all")
    code, out, _ = run(db, "intake", "--watch", str(watched), "--interval", "0", "--cycles", "1", capsys=capsys)
    assert "pending certificate" in out and token in out and "refused" in out
    assert (watched / "done" / "returned.pdf").exists() and (watched / "refused" / "junk.pdf").exists()
    code, out, _ = run(db, "intake", str(watched / "done" / "returned.pdf"), "--format", "json", capsys=capsys)
    assert code == 0 and json.loads(out)[0]["outcome"] == "duplicate"


def test_templates_show_set_reset(db, company_id, capsys, tmp_path):
    code, out, _ = run(db, "templates", "show", "reminder", capsys=capsys)
    assert code == 0 and "(built-in)" in out and "{{ token }}" in out
    code, _, err = run(db, "templates", "set", "reminder", "--subject", "Reminder {{ nope }}", capsys=capsys)
    assert code == 1 and "unknown value" in err
    html_file = tmp_path / "r.html"
    html_file.write_text("<p>Hi {{ customer.name }}</p>")
    code, out, _ = run(db, "templates", "set", "reminder", "--subject", "Reminder [{{ token }}]",
                       "--html-file", str(html_file), capsys=capsys)
    assert code == 0
    code, out, _ = run(db, "templates", "show", "reminder", capsys=capsys)
    assert "(company's own)" in out and "<p>Hi {{ customer.name }}</p>" in out
    run(db, "templates", "reset", "reminder", capsys=capsys)
    code, out, _ = run(db, "templates", "show", "reminder", capsys=capsys)
    assert "(built-in)" in out
