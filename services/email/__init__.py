"""The email service (``python -m services.email``): IMAP IDLE in, SMTP out, authorised senders only.

Modules: ``parse`` (MIME to text), ``authorise`` (allow-list, DKIM/SPF), ``store`` (SQLite:
handled mails, outbox), ``intake`` (the delivery state machine), ``imap`` (the inbox watcher),
``outbox`` (SMTP with retries), ``credentials`` (password files, TLS), ``service`` (the bus side).
"""

from .service import EmailService, main

__all__ = ["EmailService", "main"]
