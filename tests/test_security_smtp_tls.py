"""Mail to a production-like SMTP server: STARTTLS with a verified certificate, then SMTP AUTH."""

from __future__ import annotations

import datetime as dt
import ipaddress
import smtplib
import ssl
from email.message import EmailMessage

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ez360.core.settings import Settings
from operational_api.security.mail import send_smtp
from tests.support.security_world import Inbox, free_port

USER, PASSWORD = "mailer", "correct horse battery"


def _self_signed(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "smtp.crt", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def _authenticate(server, session, envelope, mechanism, auth_data):
    ok = isinstance(auth_data, LoginPassword) and (auth_data.login, auth_data.password) == (
        USER.encode(), PASSWORD.encode())
    return AuthResult(success=ok, handled=False)


@pytest.fixture
def tls_server(tmp_path, monkeypatch):
    cert, key = _self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # the client trusts this server as it would a real CA's
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=_authenticate, auth_required=True, auth_require_tls=True)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def _settings(port, password=PASSWORD):
    return Settings(_env_file=None, smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=True,
                    smtp_username=USER, smtp_password=password)


def _message():
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "no-reply@ez360.invalid", "owner@acme.test", "Verify your address"
    msg.set_content("token=abc")
    return msg


def test_mail_goes_out_over_starttls_with_login(tls_server):
    inbox, port = tls_server
    send_smtp(_settings(port), _message())
    inbox.wait_for(1)
    assert [m["Subject"] for m in inbox.messages] == ["Verify your address"]


def test_a_wrong_smtp_password_is_an_error_not_a_silent_drop(tls_server):
    inbox, port = tls_server
    with pytest.raises(smtplib.SMTPAuthenticationError):
        send_smtp(_settings(port, password="not it at all"), _message())
    assert inbox.messages == []


def test_an_untrusted_server_certificate_is_refused(tls_server, monkeypatch):
    inbox, port = tls_server
    monkeypatch.delenv("SSL_CERT_FILE")
    with pytest.raises(ssl.SSLCertVerificationError):
        send_smtp(_settings(port), _message())
    assert inbox.messages == []
