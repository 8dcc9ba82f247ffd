"""Alerts for failed runs, failed gates and stale data: email (the SMTP settings) and a Slack-compatible webhook.

Both channels are tried; if any fails, AlertError names every failure after the others were tried (a sensor
tick then shows as failed in the Dagster UI rather than the alert vanishing).
"""

from __future__ import annotations

import json
import smtplib
import ssl
import urllib.request
from dataclasses import dataclass
from email.message import EmailMessage

from ez360.core.settings import Settings


class AlertError(RuntimeError):
    pass


@dataclass(frozen=True)
class Alert:
    subject: str
    body: str

    def text(self) -> str:
        return f"*{self.subject}*\n{self.body}"


def send_webhook(url: str, alert: Alert, timeout: float = 10.0) -> None:
    request = urllib.request.Request(url, data=json.dumps({"text": alert.text()}).encode(),
                                     headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 (configured URL)
        if response.status >= 300:
            raise AlertError(f"webhook answered HTTP {response.status}")


def send_email(settings: Settings, recipients: list[str], alert: Alert) -> None:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = f"[EZ360 pipeline] {alert.subject}"
    msg.set_content(alert.body)
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(msg)


def send_alert(settings: Settings, alert: Alert) -> list[str]:
    """Send `alert` on every configured channel; returns the channels that took it."""
    sent, errors = [], []
    if settings.alert_webhook_url:
        try:
            send_webhook(settings.alert_webhook_url, alert)
            sent.append("webhook")
        except (OSError, AlertError) as exc:
            errors.append(f"webhook: {exc}")
    recipients = [a.strip() for a in settings.alert_email_to.split(",") if a.strip()]
    if recipients:
        try:
            send_email(settings, recipients, alert)
            sent.append("email")
        except (OSError, smtplib.SMTPException) as exc:
            errors.append(f"email: {exc}")
    if errors:
        raise AlertError(f"alert {alert.subject!r} not delivered on every channel: {'; '.join(errors)}")
    return sent
